from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import JSONType, Model, utcnow
from engine.domain.flags import MAX_LENGTH as FLAG_MAX_LENGTH
from engine.domain.transitions import fulfilment

ORDER_NUMBER_OFFSET = 1000

# what an order says about its tax: ``exclusive`` (tax_total charged on top of the prices),
# ``inclusive`` (tax_total is contained in the prices), ``inclusive_unknown`` (the prices contain tax of
# an amount nobody told us), ``none`` (no tax was charged), ``not_given`` (nobody said: REST orders,
# tax is the accountant's default)
TAX_STATUSES = ("exclusive", "inclusive", "inclusive_unknown", "none", "not_given")


class Order(Model):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_customer_id", "customer_id", "id"),
        Index("ix_orders_channel_id", "channel", "id"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("paid_total >= 0", name="paid_not_negative"),
        CheckConstraint("refunded_total >= 0", name="refunded_not_negative"),
        CheckConstraint("refunded_total <= paid_total", name="refunded_within_paid"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="placed")
    held_from: Mapped[str | None] = mapped_column(String(16))
    hold_reason: Mapped[str | None] = mapped_column(String(200))
    payment_status: Mapped[str] = mapped_column(String(24), default="unpaid")
    payment_provider: Mapped[str] = mapped_column(String(64), default="manual")
    channel: Mapped[str] = mapped_column(String(64), default="api")
    external_id: Mapped[str | None] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # the buyer (the customer profile); None: the channel sent no e-mail (flag ``no_email``)
    email: Mapped[str | None] = mapped_column(String(254))
    customer_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    # where the shipment goes, with the recipient's ``name`` (a gift goes to someone else than the buyer);
    # None: no shipping address was sent (flag ``review:address``)
    shipping_address: Mapped[dict | None] = mapped_column(JSONType)
    billing_address: Mapped[dict | None] = mapped_column(JSONType)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int]
    discount_total: Mapped[int] = mapped_column(default=0)
    shipping_total: Mapped[int] = mapped_column(default=0)
    tax_total: Mapped[int] = mapped_column(default=0)
    total: Mapped[int]
    # lines that hold no stock (gift cards, tips, fees, custom lines without a sku, lines that need no
    # shipping): [{"kind", "title", "sku", "quantity", "unit_price", "total", "requires_shipping"}];
    # they are in the subtotal, never reserved, picked or packed
    non_stock_lines: Mapped[list] = mapped_column(JSONType, default=list)
    # the platform's own tax figures: [{"title", "rate" (a decimal string, "0.19"), "amount"}]
    tax_lines: Mapped[list] = mapped_column(JSONType, default=list)
    prices_include_tax: Mapped[bool] = mapped_column(default=False)
    # see TAX_STATUSES
    tax_status: Mapped[str] = mapped_column(String(24), default="not_given")
    # the buyer's currency and amounts when the channel charged in another currency than the shop's
    presentment_currency: Mapped[str | None] = mapped_column(String(3))
    presentment_totals: Mapped[dict | None] = mapped_column(JSONType)
    paid_total: Mapped[int] = mapped_column(default=0)
    refunded_total: Mapped[int] = mapped_column(default=0)
    coupon: Mapped[str | None] = mapped_column(String(64))
    gift: Mapped[bool] = mapped_column(default=False)
    # the buyer's language (BCP 47, ``tr-TR``) given at placement or by the channel; None: not given
    locale: Mapped[str | None] = mapped_column(String(35))
    replacement_for_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    # an action that calls an outside service (pay, ship, cancel) claims the order under its lock
    # before the call and settles under the lock after it; another such action meanwhile is a 409
    # ``order_busy``. The claim expires (a crashed process never blocks the order for good).
    claim: Mapped[str | None] = mapped_column(String(16))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    customer = relationship("Customer")
    lines = relationship("OrderLine", order_by="OrderLine.id", back_populates="order")
    # the timeline is written by engine.signals (buffered rows, one INSERT per transaction)
    events = relationship("OrderEvent", order_by="OrderEvent.id", viewonly=True)
    payments = relationship("Payment", order_by="Payment.id")
    refunds = relationship("Refund", order_by="Refund.id", viewonly=True)
    shipments = relationship("Shipment", order_by="Shipment.id")
    # the flags as rows (see OrderFlag); read and set them as ``order.flags``
    flag_rows = relationship("OrderFlag", order_by="OrderFlag.position", cascade="all, delete-orphan",
                             back_populates="order")

    @property
    def flags(self) -> list[str]:
        """The order's flags, in the order they were set (a new list: change flags by assigning)."""
        return [row.flag for row in self.flag_rows]

    @flags.setter
    def flags(self, flags: list[str]) -> None:
        kept = {row.flag: row for row in self.flag_rows}
        rows = []
        for position, flag in enumerate(dict.fromkeys(flags)):
            row = kept.get(flag) or OrderFlag(flag=flag)
            row.position = position
            rows.append(row)
        self.flag_rows = rows

    @property
    def fulfilment(self) -> str:
        """``goods``, ``unstocked`` or ``digital``: which transition table the order follows."""
        return fulfilment(len(self.lines), self.non_stock_lines)

    @property
    def number(self) -> str:
        """The order number shown to people: stable, derived from the id."""
        return str(ORDER_NUMBER_OFFSET + self.id)


class OrderFlag(Model):
    """One flag of one order. ``GET /orders?flag=`` walks ``(flag, order_id)`` newest first; the primary
    key ``(order_id, flag)`` loads an order's flags and keeps each flag once per order."""

    __tablename__ = "order_flags"
    __table_args__ = (Index("ix_order_flags_flag_order_id", "flag", "order_id"),)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    flag: Mapped[str] = mapped_column(String(FLAG_MAX_LENGTH), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)  # flags keep the order they were set in

    order = relationship("Order", back_populates="flag_rows")


class OrderLine(Model):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),
                      CheckConstraint("NOT gift OR unit_price = 0", name="gift_line_free"))
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price: Mapped[int]
    backordered: Mapped[int] = mapped_column(default=0)
    picked_quantity: Mapped[int] = mapped_column(default=0)
    returned_quantity: Mapped[int] = mapped_column(default=0)
    # a thank-you gift: priced 0 (a CHECK holds it)
    gift: Mapped[bool] = mapped_column(default=False, server_default=false())
    # serials scanned into this line at picking (the serial_units rows point back here too)
    serials: Mapped[list] = mapped_column(JSONType, default=list)

    order = relationship("Order", back_populates="lines")

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(Model):
    """The order's timeline."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Payment(Model):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("refunded_amount >= 0", name="refunded_not_negative"),
        CheckConstraint("refunded_amount <= amount", name="refunded_within_amount"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24))  # pending, authorized, paid, failed, voided, refunded
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    refunded_amount: Mapped[int] = mapped_column(default=0)
    fee: Mapped[int | None]
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Refund(Model):
    """Money given back on one payment: reserved (``pending``) under the order's lock before the
    provider is called, then ``succeeded`` or ``failed`` (released) under the lock again.

    A refund seen first at the provider (its dashboard, a webhook) is recorded ``succeeded`` at once.
    At most one refund request of an order is pending at a time (decided under the order's lock; a
    partial unique index backs it per payment): a second refund meanwhile is a 409 ``refund_in_progress``.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("payment_id", "reference"),
        Index("ix_refunds_order_id", "order_id", "id"),
        Index("uq_refunds_one_pending_per_payment", "payment_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    return_id: Mapped[int | None] = mapped_column(ForeignKey("returns.id"))
    amount: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, succeeded, failed, superseded
    reference: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    payment = relationship("Payment")


class Shipment(Model):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64), index=True)
    tracking_url: Mapped[str | None] = mapped_column(String(500))
    estimated_delivery: Mapped[date | None] = mapped_column(Date)
    price: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(32), default="created")
    label_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Return(Model):
    """A return (RMA): lines, reason, the requested resolution (refund or exchange), and its status in the
    table of ``engine.domain.return_transitions`` (requested -> approved | rejected -> received -> resolved).

    ``lines``: ``[{"sku", "quantity", "serials"}]`` as approved; ``received_lines``: what arrived, per unit
    kind, ``[{"sku", "quantity", "serials", "condition", "location"}]`` (``condition`` resellable, damaged or
    written_off)."""

    __tablename__ = "returns"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'approved', 'rejected', 'received', 'resolved')",
                        name="status_known"),
        CheckConstraint("resolution IN ('refund', 'exchange')", name="resolution_known"),
        CheckConstraint("source IN ('staff', 'customer')", name="source_known"),
        CheckConstraint("refund_amount >= 0", name="refund_amount_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str] = mapped_column(String(16))  # refund, exchange
    # staff (opened through the API by customer service) or customer (the public request page)
    source: Mapped[str] = mapped_column(String(16), default="staff", server_default="staff")
    lines: Mapped[list] = mapped_column(JSONType)  # [{"sku", "quantity", "serials"}]
    received_lines: Mapped[list | None] = mapped_column(JSONType)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    refund_amount: Mapped[int] = mapped_column(default=0)
    replacement_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    order = relationship("Order", foreign_keys=[order_id])
