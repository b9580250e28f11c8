from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Model, utcnow

LIVE = text("archived_at IS NULL")
ARCHIVED = text("archived_at IS NOT NULL")


class Product(Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("weight_grams >= 0", name="weight_not_negative"),
        # GET /products walks ids newest first, live products (the default) or archived ones: a partial
        # index each, so a page of either costs the same however many products the other side holds
        Index("ix_products_live_id", "id", postgresql_where=LIVE, sqlite_where=LIVE),
        Index("ix_products_archived_id", "id", postgresql_where=ARCHIVED, sqlite_where=ARCHIVED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    barcode: Mapped[str | None] = mapped_column(String(64), unique=True)
    track_serials: Mapped[bool] = mapped_column(default=False)
    allow_backorder: Mapped[bool] = mapped_column(default=False)
    reorder_point: Mapped[int] = mapped_column(default=0)
    reorder_quantity: Mapped[int] = mapped_column(default=0)
    weight_grams: Mapped[int] = mapped_column(default=0)
    unit_cost: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # set when the product is retired (PATCH archived: true): it cannot be ordered or received any more
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def archived(self) -> bool:
        return self.archived_at is not None
