"""Queue, claim, send and retry messages.

A stage hook *queues* its messages (one transaction; the unique ``event_key`` makes a second delivery
of the hook a no-op) and hands each new one to a background job (``engine.plugin_api.enqueue``: at once in the
embedded mode, the rq queue ``email`` with ``REDIS_URL``). The job *claims* the message (a lease written
in its own commit, so two workers never both send it), renders and sends it with no transaction open,
then records ``sent`` — or ``failed`` with the error and the next attempt after a back-off
(``HOOKSHOP_MAIL_RETRY_DELAYS``), and ``dead`` when they ran out. The sweeper (``periodic_tasks``: in
``hookshop serve``, ``hookshop worker`` and ``hookshop relay``) sends what is due.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult

from engine.plugin_api import (
    db,
    end_read,
    enqueue,
    mask_email,
    redact_text,
    registry,
    reset_session,
    transaction,
    utcnow,
)

from . import mailer, messages
from .models import Message
from .settings import current

log = logging.getLogger("hookshop.notify_email")
LEASE = timedelta(minutes=5)  # a worker that died while sending frees its message after this
MESSAGES = Message.__table__
JOB = "plugins.notify_email.sending:send_message"


def queue(hook: str, event: dict, template: str, recipients, *, order=None, language: str,
          data: dict | None = None) -> list[int]:
    """Record one message per recipient for this event (none twice) and start sending the new ones."""
    new_ids = []
    with transaction():
        for recipient, extra in recipients:
            key = f"{event['id']}:{template}:{recipient.lower()}"[:400]
            values = {"event_key": key, "event_id": event["id"], "hook": hook, "template": template,
                      "recipient": recipient, "language": language, "order_id": order.id if order is not None else None,
                      "data": {**(data or {}), **extra}, "status": "queued", "attempts": 0,
                      "next_attempt_at": utcnow(), "created_at": utcnow()}
            message_id = _insert(values)
            if message_id is None:
                log.info("%s to %s for event #%s was queued before: not sent again", template, mask_email(recipient),
                         event["id"])
            else:
                new_ids.append(message_id)
    for message_id in new_ids:
        enqueue(current().queue, JOB, message_id)
    return new_ids


def _insert(values: dict) -> int | None:
    """``INSERT ... ON CONFLICT (event_key) DO NOTHING RETURNING id``: the new id, or None when the
    message exists (a second delivery of the hook, or another worker a moment ago)."""
    return db.session.execute(_insert_new(db.session.get_bind().dialect.name), values).scalar()


@functools.cache
def _insert_new(dialect: str):
    """A Core insert on the table (not the ORM's insert of the entity: half the CPU), built once per process
    and database kind (no statement built, no cache key computed per message)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(MESSAGES).on_conflict_do_nothing(index_elements=["event_key"]).returning(MESSAGES.c.id)


def _claim(message_id: int, now: datetime) -> bool:
    with transaction():
        result = db.session.execute(update(MESSAGES).where(
            MESSAGES.c.id == message_id, MESSAGES.c.status.in_(("queued", "failed")),
            MESSAGES.c.next_attempt_at <= now,
            or_(MESSAGES.c.claimed_until.is_(None), MESSAGES.c.claimed_until <= now))
            .values(claimed_until=now + LEASE, attempts=MESSAGES.c.attempts + 1))
    assert isinstance(result, CursorResult)  # an UPDATE without RETURNING; Session.execute's type says Result
    return result.rowcount == 1


def documents(message) -> list:
    """What the plugins attach to this message (``order_documents``); a plugin that fails attaches nothing."""
    if message.order_id is None:
        return []
    from engine.plugin_api import Order

    order = db.session.get(Order, message.order_id)
    found: list[object] = []
    for impl in reversed(registry().pm.hook.order_documents.get_hookimpls()):
        try:
            answer = impl.function(**{name: {"order": order, "kind": message.hook}[name]
                                      for name in impl.argnames}) or []
            if not isinstance(answer, Iterable):
                raise TypeError(f"order_documents returned {type(answer).__name__}, not a list")
            found.extend(answer)
        except Exception as exc:
            reset_session()
            log.warning("plugin %s could not give the documents of %s: %s", impl.plugin_name, message.hook,
                        redact_text(exc))
    return [doc for doc in found if isinstance(doc, tuple | list) and len(doc) >= 3]


def send_message(message_id: int, now: datetime | None = None) -> str:
    """The job: claim, render, send, record. Returns the message's status after (``skipped``: not ours)."""
    now = now or utcnow()
    if not _claim(message_id, now):
        reset_session()
        return "skipped"
    settings = current()
    message = db.session.get_one(Message, message_id)  # claimed just now: it is there
    error = None
    rendered: messages.Rendered | None
    try:
        rendered = messages.render(message, settings, documents(message))
        mail = mailer.build(settings, to=message.recipient, subject=rendered.subject, text=rendered.text,
                            html=rendered.html, attachments=rendered.attachments, key=message.event_key)
        end_read()  # no transaction is open while the SMTP server takes its time
        mailer.send(settings, mail)
    except Exception as exc:  # the server is down, refused the message, or a template broke
        reset_session()
        error = redact_text(f"{type(exc).__name__}: {exc}")[-2000:]
        rendered = None
    with transaction():
        message = db.session.get_one(Message, message_id)
        if rendered is not None:  # sent (every failure above leaves rendered None and an error)
            message.status, message.sent_at, message.last_error = "sent", utcnow(), None
            message.subject = rendered.subject[:300]
        else:
            delays = settings.retry_delays
            message.last_error = error
            if message.attempts > len(delays):
                message.status = "dead"
                log.error("e-mail #%s (%s to %s) is dead after %d attempts: %s", message.id, message.template,
                          mask_email(message.recipient), message.attempts, error)
            else:
                message.status = "failed"
                message.next_attempt_at = now + timedelta(seconds=delays[message.attempts - 1])
                log.warning("e-mail #%s (%s to %s) failed (attempt %d), retried at %s: %s", message.id,
                            message.template, mask_email(message.recipient), message.attempts,
                            message.next_attempt_at.isoformat(), error)
        message.claimed_until = None
        status = message.status
    return status


def send_due(now: datetime | None = None, limit: int = 50) -> int:
    """Send the messages whose time has come (retries, and those whose job never ran)."""
    now = now or utcnow()
    ids = list(db.session.execute(select(Message.id).where(
        Message.status.in_(("queued", "failed")), Message.next_attempt_at <= now,
        or_(Message.claimed_until.is_(None), Message.claimed_until <= now))
        .order_by(Message.id).limit(limit)).scalars())
    end_read()
    for message_id in ids:
        send_message(message_id, now)
    return len(ids)


def retry(message_ids: list[int] | None = None, *, dead: bool = True) -> int:
    """Make failed (and dead) messages due now: ``hookshop notifications retry``."""
    statuses = ("failed", "dead") if dead else ("failed",)
    with transaction():
        stmt = update(MESSAGES).where(MESSAGES.c.status.in_(statuses))
        if message_ids:
            stmt = stmt.where(MESSAGES.c.id.in_(message_ids))
        result = db.session.execute(stmt.values(status="failed", next_attempt_at=utcnow(), claimed_until=None,
                                                attempts=0))
    assert isinstance(result, CursorResult)  # an UPDATE without RETURNING; Session.execute's type says Result
    return result.rowcount
