"""Reorder rules: when a product's available stock crosses its reorder point, who is told and what is ordered.

A rule watches one product, at one location or (location null) over all its locations together. Its
``state`` is ``above`` or ``below``: a crossing to the point or below it turns it ``below`` (since
``crossed_at``), fires ``stock_low`` once, records a ``stock_alerts`` row naming who must be told and
puts the shortfall on the supplier's draft purchase order. It stays ``below`` — however many orders
follow — until available rises above the point again (a receipt, a cancel, a restocked return:
``note_rise``), so the next fall is a new crossing.

The product-wide rule (location null) takes its point and quantity from the product's own
``reorder_point`` and ``reorder_quantity`` (``PATCH /products/{sku}``); its row adds the supplier, the
max level, the lead time and the state, and is made on first use.

Locks: every path that changes a product's available stock holds its stock levels; rules are locked
after them (and after orders: engine lock order ... -> reorder rules -> purchase orders). So a rule's
state is one decision with the stock it describes, and 32 concurrent orders crossing one point see
one crossing.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import lazyload

from engine import signals
from engine.db import db, is_postgres, page_by_id, transaction, utcnow
from engine.errors import ValidationFailed
from engine.models import Location, Product, ReorderRule, StaffUser, StockAlert, StockLevel
from engine.models.stock import DEFAULT_LOCATION

ABOVE, BELOW = "above", "below"


def lock_rules(product_ids, *, related: bool = True) -> list[ReorderRule]:
    """Lock and return the products' reorder rules, in id order (after their stock levels); ``related``
    False leaves the rules' location and supplier unloaded (a placement's check needs neither: no join)."""
    if not product_ids:
        return []
    stmt = select(ReorderRule).where(ReorderRule.product_id.in_(sorted(set(product_ids)))).order_by(ReorderRule.id)
    if not related:
        stmt = stmt.options(lazyload(ReorderRule.location), lazyload(ReorderRule.supplier))
    return list(db.session.execute(
        stmt.with_for_update(of=ReorderRule).execution_options(populate_existing=True)).scalars())


def point_of(rule: ReorderRule, product: Product) -> tuple[int, int]:
    """The rule's reorder point and quantity (the product-wide rule: the product's own settings)."""
    if rule.location_id is None:
        return product.reorder_point or 0, product.reorder_quantity or 0
    return rule.reorder_point, rule.reorder_quantity


def _available(rule: ReorderRule, levels: list[StockLevel]) -> int:
    return sum(level.available for level in levels if level.product_id == rule.product_id
               and (rule.location_id is None or level.location_id == rule.location_id))


def _product_rule(product: Product, rules: list[ReorderRule], before: dict[int, int]) -> None:
    """Make the product-wide rule's row on first use (the product has a reorder point but no row yet).

    ``INSERT ... ON CONFLICT DO NOTHING`` on the partial unique index: a product without any stock level
    has no level lock to queue two first placements on; the second one reads the first one's row."""
    if (product.reorder_point or 0) <= 0 or any(r.product_id == product.id and r.location_id is None for r in rules):
        return
    insert = postgresql.insert if is_postgres() else sqlite.insert
    was = before.get(product.id, 0)
    db.session.execute(insert(ReorderRule).values(
        product_id=product.id, location_id=None, reorder_point=product.reorder_point,
        reorder_quantity=product.reorder_quantity or 0, state=ABOVE if was > product.reorder_point else BELOW)
        .on_conflict_do_nothing(index_elements=["product_id"], index_where=ReorderRule.location_id.is_(None)))
    rules.extend(r for r in lock_rules([product.id]) if r.location_id is None)


def may_have_rules(product: Product, levels: list[StockLevel]) -> bool:
    """Whether ``check`` must lock the product's rules: a product-wide reorder point, or a location's rule
    (``has_location_rules`` on its locked levels: put_rules sets it under the same level locks, so a rule made
    while a placement waits is seen by it), or no level at all to hold the flag (then the rules are read)."""
    if (product.reorder_point or 0) > 0:
        return True
    own = [level for level in levels if level.product_id == product.id]
    return not own or any(level.has_location_rules for level in own)


def check(products: list[Product], before: dict[int, int], levels: list[StockLevel]) -> None:
    """``stock.check_low_stock``: the rules of ``products`` whose available stock (in the locked
    ``levels``) fell to their point or below since they were last above it fire, once each."""
    products = [p for p in products if may_have_rules(p, levels)]
    if not products:
        return
    rules = lock_rules([p.id for p in products], related=False)
    for product in products:
        _product_rule(product, rules, before)
    by_id = {p.id: p for p in products}
    recipients = None
    for rule in rules:
        rule_product = by_id.get(rule.product_id)
        if rule_product is None:
            continue
        point, _ = point_of(rule, rule_product)
        if point <= 0:
            continue
        available = _available(rule, levels)
        if available > point:
            rule.state = ABOVE
            continue
        # a product-wide rule whose product was above the point before this change crossed now, whatever
        # the row says (a path that raised availability without telling the rules)
        rose = rule.location_id is None and before.get(rule_product.id, 0) > point
        if rule.state == BELOW and not rose:
            continue
        if recipients is None:
            recipients = warehouse_recipients()
        _crossed(rule, rule_product, point, available, levels, recipients)


def _crossed(rule, product, point, available, levels, recipients) -> None:
    from engine.services import purchasing

    rule.state, rule.crossed_at = BELOW, utcnow()
    db.session.flush()
    location = db.session.get(Location, rule.location_id) if rule.location_id else None
    alert = StockAlert(product_id=product.id, location_id=rule.location_id, rule_id=rule.id, available=available,
                       reorder_point=point, recipients=recipients)
    db.session.add(alert)
    db.session.flush()
    signals.stock_event.send(product, hook="stock_low", payload={
        "sku": product.sku, "available": available, "reorder_point": point,
        "location": location.code if location else None, "rule_id": rule.id, "alert_id": alert.id,
        "recipients": recipients})
    quantity = order_quantity(rule, product, available)
    if quantity > 0:
        draft = purchasing.add_to_draft(product, quantity, f"stock low: {available} available"
                                        + (f" at {location.code}" if location else ""),
                                        supplier_id=supplier_of(rule, product))
        alert.purchase_order_id = draft.id


def order_quantity(rule: ReorderRule, product: Product, available: int) -> int:
    """``reorder_quantity`` when set; else, with ``max_level``, up to it: max_level - available - the units
    still expected on open purchase orders (drafts included); else nothing is ordered."""
    from engine.services import purchasing

    _, quantity = point_of(rule, product)
    if quantity:
        return quantity
    if rule.max_level:
        return max(0, rule.max_level - available - purchasing.expected_units(product.id))
    return 0


def supplier_of(rule: ReorderRule | None, product: Product) -> int | None:
    """The rule's supplier, else the product-wide rule's (read under the rules' lock)."""
    if rule is not None and rule.supplier_id:
        return rule.supplier_id
    return db.session.execute(select(ReorderRule.supplier_id).where(
        ReorderRule.product_id == product.id, ReorderRule.location_id.is_(None))).scalar_one_or_none()


def note_rise(product_ids) -> None:
    """Reset the ``below`` rules of the products whose available stock is above their point again (after a
    receipt, a release or a restock; the caller holds the products' levels)."""
    ids = sorted(set(product_ids))
    if not ids or not db.session.execute(select(ReorderRule.id).where(
            ReorderRule.product_id.in_(ids), ReorderRule.state == BELOW).limit(1)).first():
        return
    db.session.flush()
    levels = list(db.session.execute(select(StockLevel).where(StockLevel.product_id.in_(ids))).scalars())
    for rule in lock_rules(ids):
        if rule.state != BELOW:
            continue
        point, _ = point_of(rule, db.session.get_one(Product, rule.product_id))
        if _available(rule, levels) > point:
            rule.state = ABOVE


def warehouse_recipients() -> list[str]:
    """Who is told of low stock: the staff users with the ``warehouse`` role, and ``WAREHOUSE_EMAIL``
    (``HOOKSHOP_WAREHOUSE_EMAIL``, comma separated), without repeats."""
    emails = list(db.session.execute(select(StaffUser.email).where(StaffUser.role == "warehouse", StaffUser.active.is_(True))
                                     .order_by(StaffUser.id)).scalars())
    configured = current_app.config.get("WAREHOUSE_EMAIL") or ""
    if isinstance(configured, str):
        configured = configured.split(",")
    emails.extend(e.strip() for e in configured if e and e.strip())
    return list(dict.fromkeys(emails))


# --------------------------------------------------------------------------- rules and alerts (the API)


def get_rules(sku: str) -> tuple[Product, list[ReorderRule]]:
    from engine.services import catalog

    product = catalog.get_product(sku)
    rules = list(db.session.execute(select(ReorderRule).where(ReorderRule.product_id == product.id)
                                    .order_by(ReorderRule.id)).scalars())
    if (product.reorder_point or product.reorder_quantity) and not any(r.location_id is None for r in rules):
        rules.insert(0, ReorderRule(product_id=product.id, location_id=None, state=ABOVE))  # not stored yet
    return product, rules


def put_rules(sku: str, items: list[dict]) -> tuple[Product, list[ReorderRule]]:
    """Replace the product's rules. The product-wide one (location null) writes the product's
    ``reorder_point`` and ``reorder_quantity``; left out, they become 0. A rule keeps its state when it
    stays; a new one starts ``below`` when stock is already at or below its point (no alert for a
    standing shortfall: the next crossing fires)."""
    from engine.services import catalog, purchasing, stock

    with transaction():
        product = catalog.lock_product(sku)  # product row -> levels -> rules
        levels = stock.lock_levels([product.id])
        rules = {r.location_id: r for r in lock_rules([product.id])}
        wanted: dict[int | None, dict] = {}
        for index, item in enumerate(items):
            location_id = _rule_location(item.get("location"), index)
            if location_id in wanted:
                raise ValidationFailed("two rules for one location",
                                       errors={"rules": {str(index): {"location": ["repeated"]}}})
            if item.get("supplier_id") is not None:
                purchasing.get_supplier(item["supplier_id"], field=f"rules.{index}.supplier_id")
            _check_rule(item, index)
            wanted[location_id] = item
        for location_id, rule in rules.items():
            if location_id not in wanted:
                db.session.delete(rule)
        for location_id, item in wanted.items():
            found = rules.get(location_id)
            if found is None:
                found = ReorderRule(product_id=product.id, location_id=location_id, state=ABOVE)
                db.session.add(found)
            rule = found
            for field in ("reorder_point", "reorder_quantity", "max_level", "supplier_id", "lead_time_days"):
                setattr(rule, field, item.get(field, 0 if field in ("reorder_point", "reorder_quantity") else None))
            if rule.id is None and rule.reorder_point > 0 and _available(rule, levels) <= rule.reorder_point:
                rule.state, rule.crossed_at = BELOW, utcnow()
        for level in levels:  # under the levels' locks: a placement waiting on them sees the flag
            level.has_location_rules = any(location_id is not None for location_id in wanted)
        wide = wanted.get(None, {})
        product.reorder_point, product.reorder_quantity = wide.get("reorder_point", 0), wide.get("reorder_quantity", 0)
        db.session.flush()
        return get_rules(sku)


def _rule_location(code: str | None, index: int) -> int | None:
    from engine.services import stock

    if code is None:
        return None
    if code == DEFAULT_LOCATION:
        return stock.default_location().id
    location = db.session.execute(select(Location).where(Location.code == code)).scalar_one_or_none()
    if location is None:
        raise ValidationFailed(f"unknown location {code!r}",
                               errors={"rules": {str(index): {"location": [f"unknown location {code!r}"]}}})
    return location.id


def _check_rule(item: dict, index: int) -> None:
    problems = {}
    if item.get("reorder_quantity") and item.get("max_level"):
        problems["max_level"] = ["give reorder_quantity or max_level, not both"]
    if item.get("max_level") is not None and item["max_level"] <= item.get("reorder_point", 0):
        problems["max_level"] = ["must be above reorder_point"]
    if problems:
        raise ValidationFailed("; ".join(f"{k}: {v[0]}" for k, v in problems.items()),
                               errors={"rules": {str(index): problems}})


def list_alerts(*, sku: str | None = None, limit: int = 50, cursor: int | None = None):
    stmt = select(StockAlert).order_by(StockAlert.id.desc())
    if sku:
        stmt = stmt.join(Product, Product.id == StockAlert.product_id).where(Product.sku == sku)
    return page_by_id(stmt, StockAlert.id, limit, cursor)
