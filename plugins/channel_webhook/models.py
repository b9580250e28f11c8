"""The plugin's own tables (``hookshop init`` creates them through the plugin's migrations, ``migrations/versions``).

* ``channel_webhook_channels``: the configured sales channels (format, signing secrets, sku map).
* ``channel_webhook_inbound``: one row per inbound delivery id of a channel (what it created, or why it
  was refused, with the payload kept for audit: secrets and card data removed).
* ``channel_webhook_subscriptions``: outbound webhook subscriptions.
* ``channel_webhook_deliveries`` and ``channel_webhook_attempts``: the outbound delivery log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.plugin_api import JSONType, Model, utcnow


class Channel(Model):
    __tablename__ = "channel_webhook_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(48), unique=True)
    format: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(String(255))
    # the secret being rotated out, still accepted until previous_secret_expires_at
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sku_map: Mapped[dict] = mapped_column(JSONType, default=dict)
    payment_provider: Mapped[str] = mapped_column(String(64), default="manual")
    payment_status: Mapped[str] = mapped_column(String(16), default="auto")  # auto, paid, unpaid
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class InboundDelivery(Model):
    """A delivery received on ``POST /channels/<name>/orders`` (by the sender's delivery id).

    ``outcome``: ``created`` (a new order), ``existing`` (the order was already here), ``ignored``
    (acknowledged, nothing to create: a cancelled or failed platform order), ``rejected`` (4xx: see
    ``status_code``, ``reason`` and ``errors``; the sender may retry the same delivery).
    """

    __tablename__ = "channel_webhook_inbound"
    __table_args__ = (UniqueConstraint("channel", "delivery_id"),
                      Index("ix_channel_webhook_inbound_channel_outcome", "channel", "outcome", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(48))
    delivery_id: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int]
    reason: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[dict] = mapped_column(JSONType, default=dict)
    # what the channel sent besides the order itself (billing address, note)
    extra: Mapped[dict] = mapped_column(JSONType, default=dict)
    payload: Mapped[dict | list | str | None] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(default=1)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subscription(Model):
    __tablename__ = "channel_webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(255))
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivery(Model):
    """One event for one subscription. ``webhook_id`` is stable across retries and redeliveries.

    ``status``: ``pending`` (waiting for ``next_attempt_at``), ``sending`` (claimed by a sender
    until ``next_attempt_at``, the lease), ``delivered``, ``failed`` (given up, or 410 Gone),
    ``cancelled`` (the subscription was disabled before it went out).
    """

    __tablename__ = "channel_webhook_deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "event_id"),
                      Index("ix_channel_webhook_deliveries_status_next", "status", "next_attempt_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("channel_webhook_subscriptions.id", ondelete="CASCADE"),
                                                 index=True)
    event_id: Mapped[int] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_duration_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    subscription = relationship("Subscription")
    attempt_log = relationship("DeliveryAttempt", order_by="DeliveryAttempt.id", cascade="all, delete-orphan",
                               passive_deletes=True)


class DeliveryAttempt(Model):
    __tablename__ = "channel_webhook_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("channel_webhook_deliveries.id", ondelete="CASCADE"),
                                             index=True)
    number: Mapped[int]
    manual: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
