"""A serial unit's history and the per-product counter of generated serials (docs/design-decisions.md,
"Serial numbers, labels and scanning")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Model, utcnow

# what happened to a unit; every path that changes a serial unit writes one row
EVENT_KINDS = ("received", "reserved", "released", "picked", "unpicked", "shipped", "returned", "restocked",
               "quarantined", "transferred", "adjusted", "scrapped", "swapped_out", "return_cancelled")


class SerialEvent(Model):
    """One step of a serial unit's history (append-only)."""

    __tablename__ = "serial_events"
    __table_args__ = (Index("ix_serial_events_unit", "unit_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("serial_units.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # the unit's status after the event
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    reference: Mapped[str | None] = mapped_column(String(200))


class SerialSequence(Model):
    """The next number of a product's generated serials; its row is locked under the product's lock."""

    __tablename__ = "serial_sequences"
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger, default=1)
