"""Settings of notify_email, read once per app by ``plugin_setup`` (see the README).

``HOOKSHOP_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_TLS`` (``off``, ``starttls``, ``ssl``),
``HOOKSHOP_MAIL_FROM``, ``HOOKSHOP_SHOP_NAME``, ``HOOKSHOP_SUPPORT_EMAIL``, ``HOOKSHOP_DEFAULT_LOCALE``,
``HOOKSHOP_WAREHOUSE_EMAIL``, ``HOOKSHOP_MAIL_RETRY_DELAYS``; links are built on the core's
``HOOKSHOP_PUBLIC_URL`` and follow-ups come after the core's ``HOOKSHOP_FOLLOWUP_AFTER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr

from flask import current_app

from engine.plugin_api import (  # noqa: F401  (SettingsError: plugin_setup catches it)
    Choice,
    Email,
    Integer,
    Items,
    Number,
    PluginSettings,
    Secret,
    Setting,
    SettingsError,
    Text,
    normalize_locale,
)

EXTENSION = "notify_email"
TLS_MODES = ("off", "starttls", "ssl")
DEFAULT_PORTS = {"off": 25, "starttls": 587, "ssl": 465}
LANGUAGES = ("en", "tr")  # the languages the plugin's catalogs have


@dataclass
class Settings:
    host: str | None = None
    port: int = 587
    username: str | None = None
    password: str | None = None
    tls: str = "starttls"
    mail_from: str = "hookshop <no-reply@localhost>"
    shop_name: str = "hookshop"
    support_email: str | None = None
    default_locale: str = "en"
    warehouse_email: list[str] = field(default_factory=list)
    public_url: str | None = None
    retry_delays: list[int] = field(default_factory=lambda: [60, 300, 1800, 3600, 3600, 3600])
    timeout: float = 10.0
    queue: str = "email"  # the rq queue of the sending jobs (HOOKSHOP_MAIL_QUEUE; one of HOOKSHOP_JOB_QUEUES)

    @property
    def logs_only(self) -> bool:
        """No SMTP host: messages are written to the log (the embedded default)."""
        return not self.host

    def link(self, path: str) -> str:
        """An absolute link on ``HOOKSHOP_PUBLIC_URL`` (a relative path while it is unset)."""
        return (self.public_url or "") + path


def _locale(value: str) -> str | None:
    try:
        normalize_locale(value)
    except ValueError as exc:
        return f"a language tag ({exc})"
    return None


SETTINGS = PluginSettings("", [
    Setting("SMTP_HOST", Text(), doc="the SMTP server; unset: e-mails are written to the log"),
    Setting("SMTP_PORT", Integer(min=1, max=65535), default_doc="587 (starttls), 465 (ssl), 25 (off)",
            doc="the SMTP server's port"),
    Setting("SMTP_USERNAME", Text(), doc="the SMTP login"),
    Setting("SMTP_PASSWORD", Secret(), doc="the SMTP password"),
    Setting("SMTP_TLS", Choice(*TLS_MODES), default="starttls", doc="how the connection is encrypted"),
    Setting("SMTP_TIMEOUT", Number(min=0), default=10.0, doc="seconds the SMTP server may take"),
    Setting("MAIL_FROM", Email(), default_doc="<SHOP_NAME> <no-reply@localhost>", doc="the sender"),
    Setting("SHOP_NAME", Text(), default="hookshop", doc="the shop's name in every e-mail"),
    Setting("SUPPORT_EMAIL", Email(), default_doc="MAIL_FROM's address",
            doc="where customers write to (shown in the e-mails)"),
    Setting("DEFAULT_LOCALE", Text(check=_locale), default="en",
            doc="the language of customers without one (en, tr)"),
    Setting("WAREHOUSE_EMAIL", Items(Email()),
            doc="the core's setting: who else gets the low-stock e-mail (comma separated)"),
    Setting("MAIL_RETRY_DELAYS", Items(Number(min=0), spaces=True), default=[60, 300, 1800, 3600, 3600, 3600],
            doc="seconds between a failed e-mail's attempts"),
    Setting("MAIL_QUEUE", Text(), default="email", doc="the rq queue of the sending jobs (one of HOOKSHOP_JOB_QUEUES)"),
])


def load(config) -> Settings:
    """Parse the settings; a bad value is a ``SettingsError`` whose sentence disables the plugin."""
    values = SETTINGS.load(config)
    shop_name = values.shop_name.strip()
    mail_from = values.mail_from or f"{shop_name} <no-reply@localhost>"
    return Settings(
        host=values.smtp_host, port=values.smtp_port or DEFAULT_PORTS[values.smtp_tls],
        username=values.smtp_username, password=values.smtp_password, tls=values.smtp_tls, mail_from=mail_from,
        shop_name=shop_name, support_email=values.support_email or parseaddr(mail_from)[1],
        default_locale=normalize_locale(values.default_locale), warehouse_email=list(values.warehouse_email or []),
        public_url=config.get("PUBLIC_URL"), retry_delays=[int(d) for d in values.mail_retry_delays],
        timeout=values.smtp_timeout, queue=values.mail_queue)


def current() -> Settings:
    """The current app's settings (parsed at start-up)."""
    settings = current_app.extensions.get(EXTENSION)
    if settings is None:
        settings = current_app.extensions[EXTENSION] = load(current_app.config)
    return settings
