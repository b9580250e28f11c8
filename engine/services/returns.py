"""Stage 5: returns handled by customer service.

``open_return`` (shipped, delivered or completed orders) -> ``return_requested``;
``receive_return`` puts the units back on hand (a ``return`` movement) ->
``return_received``, then resolves it: ``refund`` refunds the returned lines'
share of what was paid (-> ``refund_issued``); ``exchange`` places a
replacement order for the same units at no charge, flagged ``replacement``.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from engine.db import db, transaction
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Product, Refund, Return
from engine.services import orders as order_service
from engine.services import serials, stock

RETURNABLE = ("shipped", "delivered", "completed")


def open_return(order_id: int, lines: list[dict], reason: str, resolution: str) -> Return:
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        if order.status not in RETURNABLE:
            raise Conflict(f"only shipped, delivered or completed orders can be returned; this one is {order.status}",
                           code="not_returnable")
        by_sku = {line.sku: line for line in order.lines}
        # units in returns not received yet count as returned: two returns never restock one unit twice
        pending: Counter = Counter()
        seen_serials: set[str] = set()
        for earlier in db.session.execute(select(Return).where(Return.order_id == order.id)).scalars():
            for item in earlier.lines:
                if earlier.status == "requested":
                    pending[item["sku"]] += item["quantity"]
                seen_serials.update(item.get("serials") or [])
        errors: dict = {}
        asked: Counter = Counter()
        for index, item in enumerate(lines):
            line = by_sku.get(item["sku"])
            if line is None:
                errors[str(index)] = {"sku": [f"{item['sku']} is not on order {order.number}"]}
                continue
            asked[item["sku"]] += item["quantity"]
            returnable = line.quantity - line.returned_quantity - pending[item["sku"]]
            if asked[item["sku"]] > returnable:
                errors[str(index)] = {"quantity": [f"at most {max(returnable, 0)} returnable"
                                                   + (f" ({pending[item['sku']]} in open returns)"
                                                      if pending[item["sku"]] else "")]}
            bad = [s for s in item.get("serials") or [] if s not in line.serials]
            again = [s for s in item.get("serials") or [] if s in seen_serials]
            if bad:
                errors[str(index)] = {"serials": [f"not shipped on this order: {', '.join(bad)}"]}
            elif again:
                errors[str(index)] = {"serials": [f"already in a return: {', '.join(again)}"]}
            elif item.get("serials") and len(item["serials"]) != item["quantity"]:
                errors[str(index)] = {"serials": ["give one serial per returned unit"]}
        if not lines:
            errors["lines"] = ["return at least one line"]
        if errors:
            raise ValidationFailed("the return is not valid", errors={"lines": errors} if "lines" not in errors
                                   else errors)
        order_return = Return(order_id=order.id, status="requested", reason=reason, resolution=resolution,
                              lines=[{"sku": i["sku"], "quantity": i["quantity"], "serials": i.get("serials") or []}
                                     for i in lines], refund_amount=0)
        db.session.add(order_return)
        db.session.flush()
        for item in lines:  # the units are on their way back (serial rows: last in the lock order)
            serials.mark_returned(order.id, by_sku[item["sku"]].product_id, item.get("serials") or [],
                                  f"return {order_return.id} of order {order.number}")
        order_service.stage(order, "return_requested", f"return {order_return.id} requested ({resolution}): {reason}",
                            return_id=order_return.id, resolution=resolution)
    return order_return


def get_return(return_id: int) -> Return:
    order_return = db.session.get(Return, return_id)
    if order_return is None:
        raise NotFound(f"no return with id {return_id}")
    return order_return


def _refund_share(order, items: list[dict]) -> int:
    by_sku = {line.sku: line for line in order.lines}
    gross = sum(by_sku[i["sku"]].unit_price * i["quantity"] for i in items)
    if order.subtotal == 0:
        return 0
    # the returned lines' share of the discount is not refunded
    return gross - (order.discount_total * gross + order.subtotal // 2) // order.subtotal


def _lock_return(return_id: int) -> Return:
    return db.session.execute(select(Return).where(Return.id == return_id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()


def receive_return(return_id: int, location: str | None = None, restock: bool = True) -> Return:
    """Receive the returned units exactly once, then resolve the return.

    One transaction in the engine's lock order (stock levels, the order, the return): restock,
    then either place the replacement order (exchange) or reserve the refund; a concurrent receive
    waits and answers 409 ``return_closed``. A reserved refund is then made with the provider and
    settled; when the provider fails the refund is released, the return stays ``received`` and
    receiving it again retries the refund only."""
    order_return = get_return(return_id)
    skus = [i["sku"] for i in order_return.lines]
    with transaction():
        products = {p.sku: p for p in db.session.execute(select(Product).where(Product.sku.in_(skus))).scalars()}
        stock.lock_levels([p.id for p in products.values()])
        order = order_service.get_order(order_return.order_id, lock=True)
        order_return = _lock_return(return_id)
        retry_refund = order_return.status == "received" and order_return.resolution == "refund"
        if order_return.status != "requested" and not retry_refund:
            raise Conflict(f"return {return_id} is already {order_return.status}", code="return_closed")
        if not retry_refund:
            _receive_locked(order, order_return, products, location, restock)
        refund_ids: list[int] = []
        if order_return.resolution == "refund":
            from engine.services import payments

            refunded = db.session.execute(select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.return_id == order_return.id, Refund.status == "succeeded")).scalar_one()
            amount = min(order_return.refund_amount - refunded, payments.refundable_locked(order))
            if amount > 0:
                refund_ids = payments.reserve_refunds_locked(order, amount, f"return {order_return.id}",
                                                             return_id=order_return.id)
            else:
                order_return.status = "refunded"
    if refund_ids:
        from engine.services import payments

        payments.execute_refunds(order.id, refund_ids)  # the last settled refund marks the return refunded
    return db.session.execute(select(Return).where(Return.id == return_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _receive_locked(order, order_return: Return, products: dict, location: str | None, restock: bool) -> None:
    by_sku = {line.sku: line for line in order.lines}
    for item in order_return.lines:
        line = by_sku[item["sku"]]
        line.returned_quantity += item["quantity"]
        if restock:
            stock.restock(order, products[item["sku"]], item["quantity"], location, item.get("serials") or [],
                          f"return {order_return.id} of order {order.number}")
    order_return.status = "received"
    if order_return.resolution == "refund":
        order_return.refund_amount = _refund_share(order, order_return.lines)
    order_service.stage(order, "return_received", f"return {order_return.id} received"
                        + (" and restocked" if restock else ""), return_id=order_return.id)
    if order_return.resolution == "exchange":
        replacement, _ = order_service.place_order({
            "customer": {"email": order.email, "name": order.customer_name, "phone": order.phone,
                         "shipping_address": order.shipping_address},
            "lines": [{"sku": i["sku"], "quantity": i["quantity"], "unit_price": 0} for i in order_return.lines],
            "channel": order.channel, "payment_provider": order.payment_provider, "replacement_for": order.id,
        })
        order_return.status, order_return.replacement_order_id = "exchanged", replacement.id
