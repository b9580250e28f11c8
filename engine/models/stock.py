from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import db, utcnow

DEFAULT_LOCATION = "MAIN"


class Location(db.Model):
    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class StockLevel(db.Model):
    """On-hand and reserved units of one product at one location.

    ``on_hand`` always equals the sum of the movement ledger; ``reserved``
    equals the open reservations; the database refuses available < 0.
    """

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="available_not_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)

    location = relationship("Location")

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(db.Model):
    """The append-only stock ledger: one signed row per change of on-hand stock."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_product_location", "product_id", "location_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))  # receipt, shipment, return, adjustment
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@event.listens_for(StockMovement, "before_update")
@event.listens_for(StockMovement, "before_delete")
def _ledger_is_append_only(_mapper, _conn, target):
    raise RuntimeError("stock movements are append-only: record a correcting movement instead")


class SerialUnit(db.Model):
    """One serial-numbered unit of a tracked product."""

    __tablename__ = "serial_units"
    __table_args__ = (UniqueConstraint("product_id", "serial"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    serial: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default="in_stock")  # in_stock, picked, shipped, returned
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reservation(db.Model):
    """Units of a line held at a location; ``open`` ones add up to the level's ``reserved``."""

    __tablename__ = "reservations"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),
                      Index("ix_reservations_order_status", "order_id", "status"))
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, released, fulfilled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    line = relationship("OrderLine")
