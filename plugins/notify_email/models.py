"""The plugin's table: every message, once per (event, template, recipient). Its migrations create it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.plugin_api import JSONType, Model, utcnow

STATUSES = ("queued", "sent", "failed", "dead")


class Message(Model):
    """One e-mail. ``event_key`` (``<outbox event id>:<template>:<recipient>``) is unique: a stage hook
    delivered twice finds its message already there and sends nothing. ``claimed_until`` is the lease
    of the worker sending it (taken in its own commit before the SMTP call): two workers never both
    send it. ``failed`` is retried at ``next_attempt_at``; ``dead`` when the retries ran out."""

    __tablename__ = "notify_email_messages"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'failed', 'dead')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_notify_email_messages_due", "status", "next_attempt_at"),
        Index("ix_notify_email_messages_order_id", "order_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(400), unique=True)
    event_id: Mapped[int | None]
    hook: Mapped[str] = mapped_column(String(64))
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(35))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    # what the template needs besides the order (shipment_id, return_id, amount, sku, prices shown or not)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    subject: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(8), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
