"""Purchasing: suppliers, purchase orders with lines, reorder rules and the low-stock alerts they raise.

A purchase order is ``draft`` -> ``ordered`` -> ``partially_received`` -> ``received`` -> ``closed``
(or ``cancelled`` from draft or ordered); ``engine/domain/purchase_transitions.py`` holds the table.
``draft_key`` is set while the order is a draft and cleared when it leaves draft: ``supplier:<id>`` for a
supplier's draft, ``product:<id>`` for a product without a supplier. Its unique constraint is the
database's guard for "one open draft per supplier" (and per supplier-less product).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import JSONType, Model, utcnow


class Supplier(Model):
    __tablename__ = "suppliers"
    __table_args__ = (CheckConstraint("lead_time_days >= 0", name="lead_time_not_negative"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    lead_time_days: Mapped[int] = mapped_column(default=0)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PurchaseOrder(Model):
    """What the shop orders from a supplier (or, without one, for one product); ``number`` is ``PO-000123``."""

    __tablename__ = "purchase_orders"
    __table_args__ = (Index("ix_purchase_orders_status_id", "status", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    # draft, ordered, partially_received, received, closed, cancelled
    status: Mapped[str] = mapped_column(String(24), default="draft")
    draft_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ordered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    supplier = relationship("Supplier", lazy="joined")
    lines = relationship("PurchaseOrderLine", order_by="PurchaseOrderLine.id", back_populates="purchase_order",
                         lazy="selectin", cascade="all, delete-orphan")

    @property
    def label(self) -> str:
        """``number``: None only inside the transaction that inserts the row, which then names it by its id."""
        return self.number or f"PO-{self.id:06d}"

    # Before issue #11 a purchase order had one product and a quantity; plugins (and the
    # purchase_order_created hook's receivers) read them: the first line's product, all lines' units.
    @property
    def product(self):
        return self.lines[0].product if self.lines else None

    @property
    def product_id(self) -> int | None:
        return self.lines[0].product_id if self.lines else None

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


class PurchaseOrderLine(Model):
    """``quantity`` ordered; ``received`` put on hand; ``damaged`` arrived broken (recorded, not on hand);
    ``short`` and ``over``: what is missing or came beyond ``quantity`` (received + damaged vs ordered)."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        UniqueConstraint("purchase_order_id", "product_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("received >= 0 AND damaged >= 0 AND short_quantity >= 0 AND over_quantity >= 0", name="counts_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int]
    received: Mapped[int] = mapped_column(default=0)
    damaged: Mapped[int] = mapped_column(default=0)
    # "over" is an SQL keyword: the columns are short_quantity and over_quantity
    short: Mapped[int] = mapped_column("short_quantity", default=0)
    over: Mapped[int] = mapped_column("over_quantity", default=0)
    unit_cost: Mapped[int | None]

    purchase_order = relationship("PurchaseOrder", back_populates="lines")
    product = relationship("Product", lazy="joined")

    def recount(self) -> None:
        arrived = self.received + self.damaged
        self.short, self.over = max(0, self.quantity - arrived), max(0, arrived - self.quantity)


class ReorderRule(Model):
    """When ``available`` (at ``location``, or over all locations when it is null) falls to ``reorder_point``
    or below, the rule is ``below`` (since ``crossed_at``) until available rises above the point again."""

    __tablename__ = "reorder_rules"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        # NULLs are distinct in the constraint above: one product-wide rule (location null) per product
        Index("uq_reorder_rules_product_wide", "product_id", unique=True, postgresql_where=text("location_id IS NULL"),
              sqlite_where=text("location_id IS NULL")),
        CheckConstraint("reorder_point >= 0 AND reorder_quantity >= 0 AND lead_time_days >= 0",
                        name="settings_not_negative"),
        CheckConstraint("max_level IS NULL OR max_level > reorder_point", name="max_level_above_point"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    reorder_point: Mapped[int] = mapped_column(default=0)
    reorder_quantity: Mapped[int] = mapped_column(default=0)
    max_level: Mapped[int | None]
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"))
    lead_time_days: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(8), default="above")  # above, below
    crossed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    location = relationship("Location", lazy="joined")
    supplier = relationship("Supplier", lazy="joined")


class StockAlert(Model):
    """One row per crossing of a reorder rule: who must be told (``recipients``: e-mail addresses)."""

    __tablename__ = "stock_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("reorder_rules.id", ondelete="SET NULL"))
    available: Mapped[int]
    reorder_point: Mapped[int]
    recipients: Mapped[list] = mapped_column(JSONType, default=list)
    purchase_order_id: Mapped[int | None] = mapped_column(ForeignKey("purchase_orders.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    product = relationship("Product", lazy="joined")
    location = relationship("Location", lazy="joined")
