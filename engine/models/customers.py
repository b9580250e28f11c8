from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import JSONType, db, utcnow


class Customer(db.Model):
    """A customer profile (the buyer), keyed by e-mail (lower case), updated at every placement.

    A buyer a channel sent without e-mail is kept by the channel's customer id (``channel``,
    ``channel_customer_id``: one profile per channel customer), or gets a profile of its own per order
    when the channel gave no customer id either."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("channel", "channel_customer_id", name="uq_customers_channel_customer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    channel: Mapped[str | None] = mapped_column(String(64))
    channel_customer_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    addresses: Mapped[list] = mapped_column(JSONType, default=list)
    preferences: Mapped[dict] = mapped_column(JSONType, default=dict)
    order_count: Mapped[int] = mapped_column(default=0)
    # what the customer spent per currency ({"EUR": 125000, "JPY": 300000}: orders placed, less refunds and
    # cancellations); ``total_spent`` is its entry for the profile's ``currency`` (the first order's)
    spent_by_currency: Mapped[dict] = mapped_column(JSONType, default=dict)
    total_spent: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    vip: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
