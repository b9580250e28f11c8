"""Customer profiles: read with their statistics, search, staff edits, VIP, and the merge of duplicates.

Lock order (docs/design-decisions.md): ... orders -> return -> **customer** (rows in id order) -> coupon ...
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, or_, select, update

from engine.db import buffer_row, db, page_by_id, transaction, utcnow
from engine.domain import customers as rules
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import CouponUse, Customer, Order, OrderEvent, Shipment
from engine.services.catalog import SEARCH_MAX_LENGTH, casefold

CHANGEABLE = ("name", "phone", "company", "tax_id", "billing_address", "notes", "locale", "vip", "preferences")
MAX_MERGE = 50


def vip_threshold(currency: str) -> int:
    """The amount spent (minor units of ``currency``) that makes a customer vip; 0: none.

    ``VIP_THRESHOLDS`` maps currencies to amounts (``{"EUR": 100000, "JPY": 15000000}``); a currency it
    does not name has no threshold. Without it, ``VIP_THRESHOLD`` applies to every currency."""
    thresholds = current_app.config.get("VIP_THRESHOLDS")
    if thresholds:
        return int(thresholds.get(currency.upper()) or 0)
    return int(current_app.config.get("VIP_THRESHOLD") or 0)


def vip_at_placement(customer: Customer, currency: str, total: int) -> bool:
    """Is the order being placed (``total`` in ``currency``) a vip's? Staff's word first (``vip_by_staff``),
    then the rules: vip once earned; spent in the currency reaching ``VIP_THRESHOLD(S)`` with this order;
    ``VIP_ORDERS`` (count orders within a period, this one included; one COUNT, only when it is set)."""
    if customer.vip_by_staff is not None:
        return customer.vip_by_staff
    if customer.vip:
        return True
    threshold = vip_threshold(currency)
    if threshold and (customer.spent_by_currency or {}).get(currency, 0) + total >= threshold:
        return True
    rule = rules.vip_orders_rule(current_app.config.get("VIP_ORDERS"))
    if rule is None:
        return False
    count, window = rule
    recent = 0
    if customer.id is not None:
        recent = db.session.execute(select(func.count()).select_from(Order).where(
            Order.customer_id == customer.id, Order.status != "cancelled",
            Order.created_at >= utcnow() - window)).scalar_one()
    if recent + 1 >= count:
        customer.vip = True  # earned: kept (staff may say otherwise with PATCH vip)
        return True
    return False


def get_customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    return customer


def preferences_of(customer_id: int) -> dict:
    """The payment provider and the delivery service (carrier and service) the customer's orders used most."""
    provider = db.session.execute(
        select(Order.payment_provider).where(Order.customer_id == customer_id)
        .group_by(Order.payment_provider).order_by(func.count().desc(), Order.payment_provider).limit(1)
    ).scalar_one_or_none()
    delivery = db.session.execute(
        select(Shipment.carrier, Shipment.service).join(Order, Order.id == Shipment.order_id)
        .where(Order.customer_id == customer_id).group_by(Shipment.carrier, Shipment.service)
        .order_by(func.count().desc(), Shipment.carrier, Shipment.service).limit(1)).first()
    return {"payment_provider": provider,
            "delivery_service": {"carrier": delivery[0], "service": delivery[1]} if delivery else None}


def list_customers(*, q: str | None = None, vip: bool | None = None, merged: bool = False, limit: int = 50,
                   cursor: int | None = None) -> tuple[list[Customer], int | None]:
    """Newest first; ``q`` a case-insensitive part of the name, e-mail, company or phone. Merged profiles
    (tombstones) only with ``merged``. Keyset pages on ``(merged_into_id, id)``."""
    stmt = select(Customer).where(Customer.merged_into_id.is_not(None) if merged else Customer.merged_into_id.is_(None))
    if q:
        needle = q[:SEARCH_MAX_LENGTH].lower()
        stmt = stmt.where(or_(*(casefold(column).contains(needle, autoescape=True)
                                for column in (Customer.name, Customer.email, Customer.company, Customer.phone))))
    if vip is not None:
        staff_says = Customer.vip_by_staff.is_(vip)
        stmt = stmt.where(or_(staff_says, Customer.vip_by_staff.is_(None) & Customer.vip.is_(vip)))
    return page_by_id(stmt.order_by(Customer.id.desc()), Customer.id, limit, cursor)


def _lock(customer_ids) -> dict[int, Customer]:
    rows = db.session.execute(select(Customer).where(Customer.id.in_(sorted(set(customer_ids))))
                              .order_by(Customer.id).with_for_update().execution_options(populate_existing=True))
    return {c.id: c for c in rows.scalars()}


def _apply_changes(customer: Customer, changes: dict) -> None:
    errors: dict = {}
    if "locale" in changes and changes["locale"] is not None:
        try:
            changes["locale"] = rules.locale(changes["locale"])
        except ValueError as exc:
            errors["locale"] = [str(exc)]
    if changes.get("tax_id"):
        billing = changes.get("billing_address", customer.billing_address) or {}
        try:
            changes["tax_id"], customer.tax_id_checked = rules.tax_id(changes["tax_id"], billing.get("country"))
        except rules.InvalidTaxId as exc:
            errors["tax_id"] = [str(exc)]
    elif "tax_id" in changes:
        changes["tax_id"], customer.tax_id_checked = None, False
    if errors:
        raise ValidationFailed("the customer's details are not valid", errors=errors,
                               code="invalid_tax_id" if "tax_id" in errors else "validation_error")
    for name in CHANGEABLE:
        if name not in changes:
            continue
        if name == "vip":
            customer.vip_by_staff = changes["vip"]  # None: back to the rule
        elif name == "preferences":
            customer.preferences = {**(customer.preferences or {}), **(changes["preferences"] or {})}
        else:
            setattr(customer, name, changes[name])


def update_customer(customer_id: int, changes: dict) -> Customer:
    """Staff edits (name, phone, company, tax id, billing address, notes, language, vip) under the customer's
    lock; a merged profile is a 409 (edit its survivor)."""
    with transaction():
        customer = _lock([customer_id]).get(customer_id)
        if customer is None:
            raise NotFound(f"no customer with id {customer_id}")
        if customer.merged_into_id is not None:
            raise Conflict(f"customer {customer_id} was merged into customer {customer.merged_into_id}: edit that "
                           "one", errors={"merged_into": [customer.merged_into_id]}, code="customer_merged")
        _apply_changes(customer, dict(changes))
    return customer


def _fold(survivor: Customer, other: Customer) -> None:
    """Add ``other``'s statistics, flags and details to ``survivor`` (the survivor's own details win)."""
    survivor.order_count += other.order_count
    survivor.spent_by_currency = rules.add_up([survivor.spent_by_currency, other.spent_by_currency])
    survivor.orders_by_currency = rules.add_up([survivor.orders_by_currency, other.orders_by_currency])
    survivor.currency = survivor.currency or other.currency
    survivor.total_spent = (survivor.spent_by_currency or {}).get(survivor.currency, 0) if survivor.currency else 0
    dates = [d for d in (survivor.first_order_at, other.first_order_at) if d is not None]
    survivor.first_order_at = min(dates) if dates else None
    dates = [d for d in (survivor.last_order_at, other.last_order_at) if d is not None]
    survivor.last_order_at = max(dates) if dates else None
    survivor.vip = bool(survivor.vip or other.vip)
    if survivor.vip_by_staff is None:
        survivor.vip_by_staff = other.vip_by_staff
    for name in ("phone", "company", "tax_id", "billing_address", "locale"):
        if not getattr(survivor, name) and getattr(other, name):
            setattr(survivor, name, getattr(other, name))
            if name == "tax_id":
                survivor.tax_id_checked = other.tax_id_checked
    addresses = list(survivor.addresses or [])
    addresses += [a for a in (other.addresses or []) if a not in addresses]
    survivor.addresses = addresses[:10]
    survivor.preferences = {**(other.preferences or {}), **(survivor.preferences or {})}
    if other.notes:
        heading = f"[merged from customer {other.id}{' (' + other.email + ')' if other.email else ''}]"
        survivor.notes = "\n\n".join(part for part in (survivor.notes, f"{heading}\n{other.notes}") if part)


def _tombstone(other: Customer, survivor: Customer, now) -> None:
    other.merged_into_id, other.merged_at = survivor.id, now
    other.order_count, other.total_spent, other.spent_by_currency, other.orders_by_currency = 0, 0, {}, {}
    other.vip, other.vip_by_staff = False, None


def merge_customers(survivor_id: int, from_ids: list[int], *, source: str = "staff") -> tuple[Customer, list[int]]:
    """Merge duplicates into ``survivor_id``: their orders (and so their returns), coupon uses, spending,
    counts, flags and notes move to the survivor; each becomes a tombstone pointing to it. Returns the
    survivor and the ids merged now (none: every one was merged into it already, an idempotent replay).

    Tombstones are never written again: merging a survivor later makes a chain (tombstone -> old survivor
    -> new survivor) that placements follow, locking each row in turn. Lock order: the duplicates' orders
    (id order), then the customer rows (id order)."""
    ids = sorted(set(from_ids))
    if not ids:
        raise ValidationFailed("name the profiles to merge", errors={"from": ["at least one customer id"]})
    if survivor_id in ids:
        raise ValidationFailed("a customer cannot be merged into itself", errors={"from": [
            f"{survivor_id} is the customer merged into"]}, code="merge_into_itself")
    if len(ids) > MAX_MERGE:
        raise ValidationFailed(f"at most {MAX_MERGE} profiles at once", errors={"from": [f"at most {MAX_MERGE}"]})
    with transaction():
        # a duplicate merged into the survivor already is left alone, not even locked: a placement that found
        # its e-mail holds its row and waits for the survivor's, which this merge may hold (no cycle)
        done = set(db.session.execute(select(Customer.id).where(Customer.id.in_(ids),
                                                                Customer.merged_into_id == survivor_id)).scalars())
        ids = [i for i in ids if i not in done]
        db.session.execute(select(Order.id).where(Order.customer_id.in_(ids)).order_by(Order.id).with_for_update())
        rows = _lock([survivor_id, *ids])
        missing = [i for i in [survivor_id, *ids] if i not in rows]
        if missing:
            raise NotFound(f"no customer with id {', '.join(map(str, missing))}", errors={"from": missing})
        survivor = rows[survivor_id]
        if survivor.merged_into_id is not None:
            raise Conflict(f"customer {survivor_id} was itself merged into customer {survivor.merged_into_id}: "
                           "merge into that one", errors={"merged_into": [survivor.merged_into_id]},
                           code="customer_merged")
        elsewhere = [i for i in ids if rows[i].merged_into_id not in (None, survivor_id)]
        if elsewhere:
            raise Conflict(f"customers {', '.join(map(str, elsewhere))} were merged into another profile",
                           errors={"from": elsewhere}, code="customer_merged")
        todo = [rows[i] for i in ids if rows[i].merged_into_id is None]
        if not todo:
            return survivor, []
        merged = [c.id for c in todo]
        moved = list(db.session.execute(select(Order.id, Order.customer_id).where(Order.customer_id.in_(merged))))
        db.session.execute(update(Order).where(Order.customer_id.in_(merged)).values(customer_id=survivor.id)
                           .execution_options(synchronize_session=False))
        db.session.execute(update(CouponUse).where(CouponUse.customer_id.in_(merged))
                           .values(customer_id=survivor.id).execution_options(synchronize_session=False))
        now = utcnow()
        for other in todo:
            _fold(survivor, other)
            _tombstone(other, survivor, now)
        for order_id, previous in moved:
            buffer_row(OrderEvent, {"order_id": order_id, "kind": "customer_merged", "created_at": now,
                                    "message": f"customer {previous} merged into customer {survivor.id} by {source}",
                                    "data": {"from": previous, "into": survivor.id}})
    return survivor, merged
