"""SMTP: the only module that talks to a mail server (smtplib), or writes the message to the log."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from engine.plugin_api import mask_email, redact_text

from .settings import Settings

log = logging.getLogger("hookshop.notify_email")


def build(settings: Settings, *, to: str, subject: str, text: str, html: str, attachments, key: str) -> EmailMessage:
    """A multipart message: plain text and HTML alternatives, then the attachments."""
    mail = EmailMessage()
    mail["From"] = settings.mail_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    domain = settings.mail_from.rsplit("@", 1)[-1].strip("> ") or "localhost"
    # the same Message-ID on every attempt of one message: a receiving server can drop a duplicate
    mail["Message-ID"] = make_msgid(idstring=key.replace(":", ".").replace("@", "_")[:60], domain=domain)
    if settings.support_email:
        mail["Reply-To"] = settings.support_email
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return mail


def send(settings: Settings, mail: EmailMessage) -> None:
    """Hand the message to the SMTP server (``OSError``/``smtplib.SMTPException`` when it cannot take it),
    or, without ``HOOKSHOP_SMTP_HOST``, write it to the log."""
    if settings.logs_only or settings.host is None:
        body = mail.get_body(("plain",))
        # logs are no safe place for addresses: masked (the body too), as everywhere in hookshop
        log.info("e-mail (no HOOKSHOP_SMTP_HOST: logged, not sent) to %s: %s\n%s", mask_email(str(mail["To"])),
                 mail["Subject"], redact_text(body.get_content()) if body is not None else "")
        return
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.tls == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.tls == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(mail)
