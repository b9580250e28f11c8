from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import JSONType, Model, utcnow


class Customer(Model):
    """A customer profile (the buyer), keyed by e-mail (lower case), updated at every placement.

    A buyer a channel sent without e-mail is kept by the channel's customer id (``channel``,
    ``channel_customer_id``: one profile per channel customer), or gets a profile of its own per order
    when the channel gave no customer id either."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("channel", "channel_customer_id", name="uq_customers_channel_customer"),
                      Index("ix_customers_merged_into_id", "merged_into_id", "id"))
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
    # earned by the rule (VIP_THRESHOLD(S), VIP_ORDERS) at a placement, and kept
    vip: Mapped[bool] = mapped_column(default=False)
    # staff's word (PATCH vip): True or False wins over the rule; None: the rule decides
    vip_by_staff: Mapped[bool | None] = mapped_column()
    # B2B: the company and its tax id (VAT number: compact and checked where python-stdnum knows the
    # country's format, else kept as given; ``tax_id_checked`` says which)
    company: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(64))
    tax_id_checked: Mapped[bool] = mapped_column(default=False, server_default=false())
    # the default billing address (``addresses`` are the shipping addresses, newest first)
    billing_address: Mapped[dict | None] = mapped_column(JSONType)
    notes: Mapped[str | None] = mapped_column(Text)
    # the customer's language, a Babel locale identifier ("de", "tr", "en_GB"); None: the shop's default
    locale: Mapped[str | None] = mapped_column(String(35))
    # orders per currency (not cancelled), beside spent_by_currency: the average is spent / orders
    orders_by_currency: Mapped[dict] = mapped_column(JSONType, default=dict, server_default=text("'{}'"))
    first_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # a duplicate merged into another profile: kept as a tombstone pointing to the survivor, which now
    # holds its orders and statistics; a placement that finds the tombstone (its e-mail) goes to the survivor
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    @property
    def is_vip(self) -> bool:
        """vip as staff set it, else as the rule earned it."""
        return self.vip_by_staff if self.vip_by_staff is not None else bool(self.vip)
