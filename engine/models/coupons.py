"""Coupons managed by API and CLI, and their uses (one per order that got the coupon)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Model, utcnow

KINDS = ("percentage", "fixed_amount", "free_shipping")


class Coupon(Model):
    """A coupon: ``code`` as staff wrote it, unique case-insensitively through ``code_key`` (its lower case).

    ``used_count`` counts the uses not given back; it is changed only under the coupon's row lock (taken
    after the customer's in the engine's lock order), so ``usage_limit`` is never exceeded."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("kind IN ('percentage', 'fixed_amount', 'free_shipping')", name="kind_known"),
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint("kind <> 'percentage' OR value <= 100", name="percentage_at_most_100"),
        CheckConstraint("kind <> 'fixed_amount' OR currency IS NOT NULL", name="fixed_amount_has_currency"),
        CheckConstraint("used_count >= 0", name="used_not_negative"),
        CheckConstraint("usage_limit IS NULL OR used_count <= usage_limit", name="used_within_limit"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    code_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # percentage: 1..100; fixed_amount: minor units of ``currency``; free_shipping: 0
    value: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str | None] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    usage_limit: Mapped[int | None] = mapped_column()
    per_customer_limit: Mapped[int | None] = mapped_column()
    used_count: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CouponUse(Model):
    """One order that got the coupon; ``released_at`` is set when the order was cancelled (the use given back)."""

    __tablename__ = "coupon_uses"
    __table_args__ = (Index("ix_coupon_uses_coupon_customer", "coupon_id", "customer_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
