from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Model, utcnow

DEFAULT_LOCATION = "MAIN"
# the reasons of an ``adjustment`` movement (POST /stock/adjustments, posted counts)
ADJUSTMENT_REASONS = ("count_correction", "damage", "loss", "found")


# what a location is for; a warehouse is a path's first segment, every other kind lives inside one
LOCATION_KINDS = ("warehouse", "bin", "receiving", "quarantine", "staging")


class Location(Model):
    """A warehouse or a place inside one, named by its path: ``MAIN``, ``MAIN/A-01-3`` (``code``).

    Only ``pickable`` locations give stock to orders; a quarantine location never does."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint("kind IN ('warehouse', 'bin', 'receiving', 'quarantine', 'staging')", name="kind_known"),
        CheckConstraint("(kind = 'warehouse' AND parent_id IS NULL) OR (kind <> 'warehouse' AND parent_id IS NOT NULL)",
                        name="warehouse_is_top_level"),
        CheckConstraint("kind <> 'quarantine' OR NOT pickable", name="quarantine_not_pickable"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # the path
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="warehouse")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    pickable: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def warehouse(self) -> str:
        return self.code.split("/", 1)[0]


class StockLevel(Model):
    """On-hand and reserved units of one product at one location.

    ``on_hand`` always equals the sum of the movement ledger; ``reserved``
    equals the open reservations; the database refuses available < 0.
    ``has_location_rules``: the product has a reorder rule for a location (on all its levels; kept by
    engine/services/reorder.py under the product and level locks), so placement locks the rules only then.
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
    has_location_rules: Mapped[bool] = mapped_column(default=False, server_default=false())

    location = relationship("Location")

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class StockMovement(Model):
    """The append-only stock ledger: one signed row per change of on-hand stock."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_product_location", "product_id", "location_id"),
                      CheckConstraint("kind <> 'adjustment' OR (reason IS NOT NULL AND staff IS NOT NULL)",
                                      name="adjustment_has_reason_and_staff"))
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int]
    kind: Mapped[str] = mapped_column(String(32))  # receipt, shipment, return, adjustment
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    reference: Mapped[str | None] = mapped_column(String(200))
    # adjustments only: count_correction, damage, loss or found; who made it (as given); a free note
    reason: Mapped[str | None] = mapped_column(String(32))
    staff: Mapped[str | None] = mapped_column(String(254))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@event.listens_for(StockMovement, "before_update")
@event.listens_for(StockMovement, "before_delete")
def _ledger_is_append_only(_mapper, _conn, target):
    raise RuntimeError("stock movements are append-only: record a correcting movement instead")


SERIAL_STATUSES = ("in_stock", "reserved", "picked", "shipped", "returned", "quarantined", "scrapped")
ON_HAND_SERIAL_STATUSES = ("in_stock", "reserved", "picked", "quarantined")


class SerialUnit(Model):
    """One serial-numbered unit of a tracked product.

    ``reserved``/``picked`` units point at the open reservation holding them (``reservation_id``) and at the
    order line (``line_id``); the statuses are listed in docs/design-decisions.md."""

    __tablename__ = "serial_units"
    __table_args__ = (UniqueConstraint("product_id", "serial"),
                      Index("ix_serial_units_pick", "product_id", "location_id", "status", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    serial: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default="in_stock")  # SERIAL_STATUSES
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"), index=True)
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Reservation(Model):
    """Units of a line held at a location; ``open`` ones add up to the level's ``reserved``."""

    __tablename__ = "reservations"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),
                      Index("ix_reservations_order_status", "order_id", "status"),
                      # the reconciliation sums open reservations per product and location, a chunk at a time
                      Index("ix_reservations_product_open", "product_id", "location_id",
                            postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")))
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, released, fulfilled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    line = relationship("OrderLine")
