"""The plugin's own table: every request it sends to Stripe, stored before it is sent.

One row per (order, operation, attempt). The row's idempotency key is written
and committed *before* the request goes out, and every retry of the same
operation sends the same key, so Stripe performs it once. A new attempt (a new
key) is only made when the previous one failed for good (a decline, a refused
request), never after a network error whose outcome is unknown.

``operation`` names what the request does:

* ``intent`` — create the order's PaymentIntent (attempt N is the Nth intent)
* ``attach:<pi>:<pm>`` / ``confirm:<pi>:<pm>`` — set a PaymentMethod on the intent, confirm it
* ``capture:<pi>``, ``cancel:<pi>``
* ``refund:<pi>:<refunded before>:<amount>``
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.plugin_api import Model, utcnow


class StripeOperation(Model):
    __tablename__ = "payments_stripe_operations"
    __table_args__ = (UniqueConstraint("order_id", "operation", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    operation: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    # started: stored, not answered yet; succeeded; failed (for good: the next try is a new attempt);
    # unknown (network error, rate limit, Stripe 5xx: the next try reuses the key)
    status: Mapped[str] = mapped_column(String(16), default="started")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    amount: Mapped[int | None]
    stripe_status: Mapped[str | None] = mapped_column(String(32))  # the PaymentIntent's last known status
    result_id: Mapped[str | None] = mapped_column(String(255))  # e.g. the refund's id
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
