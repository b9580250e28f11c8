"""Stage 5: receiving an approved return and resolving it (``POST /returns/{id}/receive``, ``/resolve``).

Receiving is one transaction in the engine's lock order: the stock levels of the return's products,
the order, the return, the customer (an exchange's replacement order), then the serial units. Each unit
goes back on hand where its condition says: ``resellable`` to the receiving location (default ``MAIN``;
the units serve backorders at once) with its serial ``in_stock``; ``damaged`` to the quarantine location
(``RETURNS_QUARANTINE_LOCATION``) with its serial ``quarantined``; ``restock: false`` puts nothing back
(serials ``scrapped``). Then the return is resolved: ``exchange`` places the zero-priced replacement
order (``resolved`` at once); ``refund`` reserves the refund, which the provider makes after the commit
and whose settling resolves the return. A refund that fails at the provider leaves the return
``received``; ``resolve`` (or receiving it again) retries the refund only.
"""

from __future__ import annotations

from collections import Counter

from flask import current_app
from sqlalchemy import func, select

from engine.db import db, transaction, utcnow
from engine.domain import return_transitions as rma
from engine.errors import Conflict, ValidationFailed
from engine.models import Product, Refund, Return, SerialUnit
from engine.services import orders as order_service
from engine.services import returns, serials, stock

SERIAL_STATUS = {"resellable": "in_stock", "damaged": "quarantined", "written_off": "scrapped"}


def quarantine_location() -> str:
    return current_app.config.get("RETURNS_QUARANTINE_LOCATION") or "MAIN/QUARANTINE"


def _refund_share(order, items: list[dict]) -> int:
    by_sku = {line.sku: line for line in order.lines}
    gross = sum(by_sku[i["sku"]].unit_price * i["quantity"] for i in items)
    if order.subtotal == 0:
        return 0
    # the returned lines' share of the discount is not refunded
    return gross - (order.discount_total * gross + order.subtotal // 2) // order.subtotal


def receipt_plan(order_return: Return, lines: list[dict] | None, restock: bool, location: str | None) -> list[dict]:
    """What arrived, unit group by unit group: ``[{"sku", "quantity", "serials", "condition", "location"}]``.

    ``lines`` names the units that are not resellable (or all of them); the units not named are
    resellable. 422 for units that are not on the return."""
    if not restock:
        if lines:
            raise ValidationFailed("restock: false puts nothing back on hand; give lines with a condition instead",
                                   errors={"lines": ["not with restock: false"]})
        return [{**_units(item), "condition": "written_off", "location": None} for item in order_return.lines]
    returned: Counter[str] = Counter()
    serials_left: dict[str, list[str]] = {}
    for item in order_return.lines:
        returned[item["sku"]] += item["quantity"]
        serials_left.setdefault(item["sku"], []).extend(item.get("serials") or [])
    errors: dict = {}
    plan: list[dict] = []
    for index, entry in enumerate(lines or []):
        sku, serials = entry["sku"], list(entry.get("serials") or [])
        tracked = bool(serials_left.get(sku)) or any(i["sku"] == sku and i.get("serials") for i in order_return.lines)
        quantity: int = entry.get("quantity", len(serials))  # none given and no serials: 0, refused below
        if sku not in returned:
            errors[str(index)] = {"sku": [f"{sku} is not on return {order_return.id}"]}
        elif tracked and (not serials or quantity != len(serials)):
            errors[str(index)] = {"serials": [f"{sku} is serial-tracked: name each unit by its serial"]}
        elif tracked and any(s not in serials_left[sku] for s in serials):
            errors[str(index)] = {"serials": [f"not on this return (or named twice): "
                                              f"{', '.join(s for s in serials if s not in serials_left[sku])}"]}
        elif not tracked and (serials or not quantity):
            errors[str(index)] = {"quantity": [f"{sku} is not serial-tracked: give the quantity"]}
        elif quantity > returned[sku]:
            errors[str(index)] = {"quantity": [f"at most {returned[sku]} of {sku} left on this return"]}
        else:
            returned[sku] -= quantity
            for serial in serials:
                serials_left[sku].remove(serial)
            plan.append({"sku": sku, "quantity": quantity, "serials": serials, "condition": entry["condition"]})
    if errors:
        raise ValidationFailed("the received lines do not match the return", errors={"lines": errors})
    for sku, quantity in returned.items():
        if quantity:
            plan.append({"sku": sku, "quantity": quantity, "serials": serials_left[sku], "condition": "resellable"})
    for group in plan:
        if group["condition"] == "damaged":
            group["location"] = stock.quarantine_location(quarantine_location()).code  # made non-pickable
        else:
            group["location"] = location or stock.DEFAULT_LOCATION
    return plan


def _units(item: dict) -> dict:
    return {"sku": item["sku"], "quantity": item["quantity"], "serials": list(item.get("serials") or [])}


def receive_return(return_id: int, location: str | None = None, restock: bool = True,
                   lines: list[dict] | None = None, refund_amount: int | None = None) -> Return:
    """Receive an approved return exactly once, then resolve it (see the module's docstring).

    A staff return still ``requested`` that needs no approval (opened before approvals existed) is
    approved in the same transaction. Receiving a ``received`` refund again retries its refund."""
    order_return = returns.get_return(return_id)
    if refund_amount is not None and order_return.resolution != "refund":
        raise ValidationFailed("an exchange refunds nothing", errors={"refund_amount": ["only for a refund"]})
    skus = sorted({i["sku"] for i in order_return.lines})
    with transaction():
        # lock order: the product rows (a restock may make a level: its reorder flag is read under them), levels
        products = {p.sku: p for p in db.session.execute(
            select(Product).where(Product.sku.in_(skus)).order_by(Product.id).with_for_update(key_share=True)
            .execution_options(populate_existing=True)).scalars()}
        stock.lock_levels([p.id for p in products.values()])
        order = order_service.get_order(order_return.order_id, lock=True)
        order_return = returns.lock_return(return_id)
        if order_return.status == rma.RECEIVED and order_return.resolution == "refund":
            refund_ids = _reserve_refund(order, order_return)  # the retry of a refund that failed
        else:
            if order_return.status == rma.REQUESTED and not returns.needs_approval(order_return):
                returns.approve_locked(order, order_return, "received without approval (approval not required)",
                                       units=False)
            _check_receivable(order_return)
            plan = receipt_plan(order_return, lines, restock, location)
            _receive_locked(order, order_return, products, plan, refund_amount)
            refund_ids = (_reserve_refund(order, order_return, named=refund_amount is not None)
                          if order_return.resolution == "refund" else [])
    if refund_ids:
        from engine.services import payments

        payments.execute_refunds(order.id, refund_ids)  # the last settled refund resolves the return
    return _fresh(return_id)


def resolve_return(return_id: int) -> Return:
    """Retry the refund of a received return (its first attempt failed at the provider)."""
    order_return = returns.get_return(return_id)
    with transaction():
        order = order_service.get_order(order_return.order_id, lock=True)
        order_return = returns.lock_return(return_id)
        rma.check(return_id, order_return.status, "resolve")
        refund_ids = _reserve_refund(order, order_return)
    if refund_ids:
        from engine.services import payments

        payments.execute_refunds(order.id, refund_ids)
    return _fresh(return_id)


def _fresh(return_id: int) -> Return:
    return db.session.execute(select(Return).where(Return.id == return_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _check_receivable(order_return: Return) -> None:
    if order_return.status in (rma.RECEIVED, rma.RESOLVED):
        allowed = rma.allowed_actions(order_return.status)
        raise Conflict(f"return {order_return.id} is already {order_return.status}: it was received once; allowed "
                       f"next actions: {', '.join(allowed) or 'none (the return is final)'}", code="return_closed",
                       errors={"status": [order_return.status], "allowed_actions": allowed})
    rma.check(order_return.id, order_return.status, "receive")


def _receive_locked(order, order_return: Return, products: dict, plan: list[dict], refund_amount: int | None) -> None:
    by_sku = {line.sku: line for line in order.lines}
    reference = f"return {order_return.id} of order {order.number}"
    for item in order_return.lines:
        by_sku[item["sku"]].returned_quantity += item["quantity"]
    for group in plan:
        if group["location"] is not None:
            # the units' serials back in stock first (with their history), so waiting backorders of a tracked
            # product reserve them; damaged ones are quarantined below
            stock.restock(order, products[group["sku"]], group["quantity"], group["location"], group["serials"],
                          reference, fill_backorders=group["condition"] == "resellable")
    order_return.status, order_return.received_at, order_return.received_lines = rma.RECEIVED, utcnow(), plan
    if order_return.resolution == "refund":
        order_return.refund_amount = (refund_amount if refund_amount is not None
                                      else _refund_share(order, order_return.lines))
    where = ", ".join(f"{g['quantity']} {g['sku']} {g['condition']}" + (f" to {g['location']}" if g["location"] else "")
                      for g in plan)
    order_service.stage(order, "return_received", f"return {order_return.id} received: {where}",
                        return_id=order_return.id, lines=plan)
    if order_return.resolution == "exchange":
        replacement, _ = order_service.place_order({
            "customer": {"email": order.email, "name": order.customer_name, "phone": order.phone,
                         "shipping_address": order.shipping_address},
            "lines": [{"sku": i["sku"], "quantity": i["quantity"], "unit_price": 0} for i in order_return.lines],
            "channel": order.channel, "payment_provider": order.payment_provider, "replacement_for": order.id,
        })
        order_return.replacement_order_id = replacement.id
        _resolve_locked(order_return)
    _set_units(order, products, plan, reference)  # serial units last (lock order)


def _set_units(order, products: dict, plan: list[dict], reference: str) -> None:
    wanted = {(products[g["sku"]].id, s): g for g in plan for s in g["serials"]}
    if not wanted:
        return
    locations = {g["location"]: stock.location_id(g["location"]) for g in plan if g["location"] and g["serials"]}
    units = db.session.execute(select(SerialUnit).where(
        SerialUnit.product_id.in_({p for p, _ in wanted}), SerialUnit.serial.in_({s for _, s in wanted}))
        .order_by(SerialUnit.id).with_for_update()).scalars()
    events = []
    for unit in units:
        group = wanted.get((unit.product_id, unit.serial))
        if group is None:
            continue
        status = SERIAL_STATUS[group["condition"]]
        if status == "in_stock":  # restocked (with its event) before backorders and an exchange took units:
            continue              # it may be reserved for them by now
        events.append({"unit_id": unit.id, "kind": status, "status": status, "order_id": order.id,
                       "location_id": locations.get(group["location"]), "reference": reference})
        unit.status, unit.line_id = status, None
        if group["location"]:
            unit.location_id = locations[group["location"]]
    serials.log_rows(events)


def _resolve_locked(order_return: Return) -> None:
    order_return.status, order_return.resolved_at = rma.RESOLVED, utcnow()


def _reserve_refund(order, order_return: Return, named: bool = False) -> list[int]:
    """Reserve what is left of the return's refund (never above paid minus refunded); resolve at 0."""
    from engine.services import payments

    refunded = db.session.execute(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.return_id == order_return.id, Refund.status == "succeeded")).scalar_one()
    left = order_return.refund_amount - refunded
    # the lines' share is capped at what can still be refunded; an amount staff named is refused above it
    amount = left if named else min(left, payments.refundable_locked(order))
    if amount <= 0:
        _resolve_locked(order_return)
        return []
    return payments.reserve_refunds_locked(order, amount, f"return {order_return.id}", return_id=order_return.id)

