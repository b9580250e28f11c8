"""The plugin's own tables: its migrations (``migrations/versions``) create them; ``hookshop db check`` compares."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.plugin_api import Model, utcnow


class TrackingSequence(Model):
    """The last sequence number used per carrier and tracking prefix."""

    __tablename__ = "carrier_generic_sequences"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class TrackingEvent(Model):
    """A carrier's tracking event, once per (shipment, status, time) whatever the delivery id."""

    __tablename__ = "carrier_generic_tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "status", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location: Mapped[str | None] = mapped_column(String(200))
    webhook_id: Mapped[str] = mapped_column(String(200))
    late: Mapped[bool] = mapped_column(default=False)  # older than an event received before it
    moved_order: Mapped[bool] = mapped_column(default=False)  # this event delivered the order
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
