"""Coupons: managed by API and CLI (the ``coupons`` table), applied at placement under the coupon's row lock.

Where the table holds no coupon of a code, the ``COUPONS`` setting is looked up (as before this table
existed): such a coupon has no limits, no validity dates and records no use.

Lock order (docs/design-decisions.md): ... orders -> return -> customer -> **coupon** -> ... Placement locks
the coupon after the customer; a cancellation gives the use back after the customer's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from engine.db import as_utc, db, page_by_id, transaction, utcnow
from engine.domain import money
from engine.domain.money import percent_of
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Coupon, CouponUse, Customer, Order

CHANGEABLE = ("kind", "value", "currency", "category", "valid_from", "valid_until", "usage_limit",
              "per_customer_limit", "active")


def code_key(code: str) -> str:
    """The code as the table keys it: case-insensitive (``Welcome10`` is ``WELCOME10``)."""
    return code.strip().casefold()


@dataclass
class Applied:
    """A coupon applied to an order being placed: the discount on the lines and on shipping."""

    code: str
    category: str
    discount: int
    shipping_discount: int
    coupon: Coupon | None  # None: a coupon of the COUPONS setting (no use recorded)


def _check(data: dict) -> dict:
    """The coupon's fields, checked together (a 422 naming the field)."""
    errors = {}
    kind = data.get("kind")
    if kind == "percentage" and not 1 <= int(data.get("value") or 0) <= 100:
        errors["value"] = ["a percentage is 1 to 100"]
    if kind == "fixed_amount":
        if not data.get("value"):
            errors["value"] = ["a fixed amount needs its value in minor units"]
        if not data.get("currency"):
            errors["currency"] = ["a fixed amount needs its currency"]
    if kind == "free_shipping":
        data["value"] = 0
    if data.get("currency"):
        try:
            data["currency"] = money.currency_code(data["currency"])
        except money.UnknownCurrency as exc:
            errors["currency"] = [str(exc)]
    start, end = data.get("valid_from"), data.get("valid_until")
    if start and end and as_utc(end) <= as_utc(start):
        errors["valid_until"] = ["must be after valid_from"]
    if errors:
        raise ValidationFailed("the coupon is not valid", errors=errors)
    return data


def create_coupon(data: dict) -> Coupon:
    """A new coupon; a code that exists (in any case) is a 409 ``duplicate_coupon``."""
    data = _check(dict(data))
    with transaction():
        key = code_key(data["code"])
        if db.session.execute(select(Coupon.id).where(Coupon.code_key == key)).first():
            raise Conflict(f"a coupon with code {data['code']!r} exists", errors={"code": ["already exists"]},
                           code="duplicate_coupon")
        coupon = Coupon(code=data["code"].strip(), code_key=key, kind=data["kind"], value=int(data.get("value") or 0),
                        currency=data.get("currency"), category=(data.get("category") or key)[:64],
                        valid_from=data.get("valid_from"), valid_until=data.get("valid_until"),
                        usage_limit=data.get("usage_limit"), per_customer_limit=data.get("per_customer_limit"),
                        used_count=0, active=data.get("active", True))
        db.session.add(coupon)
    return coupon


def get_coupon(code: str, *, lock: bool = False) -> Coupon:
    stmt = select(Coupon).where(Coupon.code_key == code_key(code))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    coupon = db.session.execute(stmt).scalar_one_or_none()
    if coupon is None:
        raise NotFound(f"no coupon with code {code!r}")
    return coupon


def list_coupons(*, active: bool | None = None, limit: int = 50, cursor: int | None = None):
    """Newest first (the table's coupons; those of the COUPONS setting are not listed)."""
    stmt = select(Coupon)
    if active is not None:
        stmt = stmt.where(Coupon.active.is_(active))
    return page_by_id(stmt.order_by(Coupon.id.desc()), Coupon.id, limit, cursor)


def update_coupon(code: str, changes: dict) -> Coupon:
    """Change a coupon under its row lock; a usage limit below the uses counted is a 409."""
    with transaction():
        coupon = get_coupon(code, lock=True)
        merged = {name: getattr(coupon, name) for name in CHANGEABLE}
        merged.update(changes)
        merged = _check(merged)
        limit = merged.get("usage_limit")
        if limit is not None and limit < coupon.used_count:
            raise Conflict(f"coupon {coupon.code} has been used {coupon.used_count} times: its limit cannot be "
                           f"{limit}", errors={"usage_limit": [f"at least {coupon.used_count}"]},
                           code="usage_limit_below_uses")
        for name in CHANGEABLE:
            setattr(coupon, name, merged.get(name))
        coupon.value = int(coupon.value or 0)
    return coupon


def _refuse(code: str, message: str, field_message: str, *, status: type = ValidationFailed, error: str):
    raise status(message, errors={"coupon": [field_message]}, code=error)


def _config_coupon(code: str, subtotal: int) -> Applied | None:
    coupons = current_app.config.get("COUPONS") or {}
    rule = coupons.get(code) or coupons.get(code.upper())
    if rule is None:
        return None
    discount = percent_of(subtotal, rule.get("percent_off", 0)) + int(rule.get("amount_off", 0))
    return Applied(code, rule.get("category") or code.lower(), min(discount, subtotal), 0, None)


def _uses_of(coupon: Coupon, customer: Customer) -> int:
    if customer.id is None:  # a profile made by this placement has used nothing yet
        return 0
    return db.session.execute(select(func.count()).select_from(CouponUse).where(
        CouponUse.coupon_id == coupon.id, CouponUse.customer_id == customer.id,
        CouponUse.released_at.is_(None))).scalar_one()


def _check_usable(coupon: Coupon, customer: Customer, identified: bool, currency: str, now: datetime) -> None:
    """Refuse the coupon (the order is not placed): inactive, outside its dates, exhausted, used up by this
    customer, or of another currency."""
    code = coupon.code
    if not coupon.active:
        _refuse(code, f"coupon {code} is disabled", "disabled", error="coupon_inactive")
    if coupon.valid_from and as_utc(coupon.valid_from) > now:
        _refuse(code, f"coupon {code} is valid from {as_utc(coupon.valid_from).isoformat()}", "not valid yet",
                error="coupon_not_valid")
    if coupon.valid_until and as_utc(coupon.valid_until) <= now:
        _refuse(code, f"coupon {code} expired at {as_utc(coupon.valid_until).isoformat()}", "expired",
                error="coupon_not_valid")
    if coupon.currency and coupon.currency != currency:
        _refuse(code, f"coupon {code} is for orders in {coupon.currency}, this order is in {currency}",
                f"only for {coupon.currency}", error="coupon_not_applicable")
    if coupon.usage_limit is not None and coupon.used_count >= coupon.usage_limit:
        _refuse(code, f"coupon {code} has been used up ({coupon.usage_limit} uses): the order was not placed; "
                "place it without the coupon", "used up", status=Conflict, error="coupon_exhausted")
    if coupon.per_customer_limit is not None:
        if not identified:
            _refuse(code, f"coupon {code} is limited per customer and the buyer has no e-mail", "needs the "
                    "buyer's e-mail", error="coupon_needs_customer")
        if _uses_of(coupon, customer) >= coupon.per_customer_limit:
            _refuse(code, f"this customer has used coupon {code} {coupon.per_customer_limit} times already",
                    "used up by this customer", status=Conflict, error="coupon_limit_reached")


def apply_locked(code: str | None, *, customer: Customer, identified: bool, currency: str, subtotal: int,
                 shipping_total: int) -> Applied | None:
    """Apply ``code`` to an order being placed, the customer's row already locked: locks the coupon's row,
    checks it and counts the use (``record_use`` writes it once the order has its id). Unknown: a 422."""
    if not code:
        return None
    coupon = db.session.execute(select(Coupon).where(Coupon.code_key == code_key(code)).with_for_update()
                                .execution_options(populate_existing=True)).scalar_one_or_none()
    if coupon is None:
        applied = _config_coupon(code, subtotal)
        if applied is None:
            raise ValidationFailed(f"unknown coupon {code!r}", errors={"coupon": [f"unknown coupon {code!r}"]})
        return applied
    _check_usable(coupon, customer, identified, currency, utcnow())
    discount = shipping = 0
    if coupon.kind == "percentage":
        discount = percent_of(subtotal, coupon.value)
    elif coupon.kind == "fixed_amount":
        discount = coupon.value
    else:
        shipping = shipping_total
    coupon.used_count += 1
    return Applied(coupon.code, coupon.category, min(discount, subtotal), shipping, coupon)


def record_use(applied: Applied | None, order: Order) -> None:
    """The use of a table coupon by the (flushed) order."""
    if applied is not None and applied.coupon is not None:
        db.session.add(CouponUse(coupon_id=applied.coupon.id, order_id=order.id, customer_id=order.customer_id))


def release_locked(order: Order) -> bool:
    """Give the coupon's use back when ``order`` is cancelled (the customer locked before, the coupon now);
    False when the order used no table coupon or gave it back already."""
    if not order.coupon:
        return False
    use = db.session.execute(select(CouponUse).where(CouponUse.order_id == order.id,
                                                     CouponUse.released_at.is_(None))).scalar_one_or_none()
    if use is None:
        return False
    coupon = db.session.execute(select(Coupon).where(Coupon.id == use.coupon_id).with_for_update()
                                .execution_options(populate_existing=True)).scalar_one()
    coupon.used_count = max(0, coupon.used_count - 1)
    use.released_at = utcnow()
    return True


def disable_coupon(code: str) -> Coupon:
    return update_coupon(code, {"active": False})
