"""Cycle counts: a count of one location, its lines (one per product) and the serials it expects or found."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Model, utcnow

COUNT_STATUSES = ("open", "posted", "cancelled")
OPEN_COUNT = text("status = 'open'")


class StockCount(Model):
    """A cycle count of one location: opened (the expected stock snapshotted), scanned, then posted or cancelled.

    ``ledger_mark`` is the highest stock movement id when the count opened: the movements of its products at
    its location with a higher id happened during the count (see services/counts.py)."""

    __tablename__ = "stock_counts"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'posted', 'cancelled')", name="status_known"),
        # one open count per location: two counters cannot open two counts of one bin at once
        Index("ix_stock_counts_location_open", "location_id", unique=True, postgresql_where=OPEN_COUNT,
              sqlite_where=OPEN_COUNT),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    ledger_mark: Mapped[int] = mapped_column(default=0)
    # opened without skus: every product at the location, and any product scanned there joins the count
    whole_location: Mapped[bool] = mapped_column(default=True)
    opened_by: Mapped[str] = mapped_column(String(254))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(254))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(String(500))

    location = relationship("Location", lazy="joined")


class StockCountLine(Model):
    """One product of a count: on hand at its location when the count opened, and what was counted so far."""

    __tablename__ = "stock_count_lines"
    __table_args__ = (
        UniqueConstraint("count_id", "product_id"),
        CheckConstraint("expected >= 0", name="expected_not_negative"),
        CheckConstraint("counted >= 0", name="counted_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("stock_counts.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    expected: Mapped[int] = mapped_column(default=0)
    counted: Mapped[int] = mapped_column(default=0)
    # the adjustment posting made (counted minus on hand at posting); null until posted
    posted_difference: Mapped[int | None]

    product = relationship("Product", lazy="joined")


class StockCountSerial(Model):
    """A serial of a count: expected (in an on-hand status at the location when it opened) and/or counted."""

    __tablename__ = "stock_count_serials"
    __table_args__ = (UniqueConstraint("count_id", "product_id", "serial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("stock_counts.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    serial: Mapped[str] = mapped_column(String(128))
    expected: Mapped[bool] = mapped_column(default=False)
    counted: Mapped[bool] = mapped_column(default=False)
