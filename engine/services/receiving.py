"""Receiving a purchase order: per line a quantity or the scanned serials, and damaged units.

Decisions (docs/design-decisions.md, "Purchasing and reorder rules"):

- Good units go on hand at ``location`` (default ``MAIN``) through ``stock.receive_locked``, the core
  ``POST /stock/receipts`` uses: one ``receipt`` movement per line, serials registered, waiting
  backorders filled first (oldest order first), reorder rules lifted above their point reset.
- Damaged units are recorded on the line (``damaged``) and not put on hand: nothing can sell or
  allocate them, and the supplier's claim reads them from the purchase order.
- ``short`` and ``over`` compare what arrived (received + damaged) with what was ordered, after each
  receipt. Over units are put on hand (they are in the warehouse) and recorded as ``over``.
- The purchase order is ``received`` once every line arrived in full, ``partially_received`` before.

One transaction, the engine's lock order: product rows by id -> stock levels -> the backordered
orders -> reorder rules -> the purchase order's row (taken last; its status is checked again under it).
"""

from __future__ import annotations

from sqlalchemy import select

from engine.db import db, transaction, utcnow
from engine.domain import purchase_transitions as ptx
from engine.errors import ValidationFailed
from engine.models import Product, PurchaseOrder
from engine.services import purchasing, stock


def receive(po_id: int, data: dict) -> PurchaseOrder:
    with transaction():
        po = purchasing.get_purchase_order(po_id)
        ptx.check(po.label, po.status, "receive")
        plan = _plan(po, data["lines"])
        ids = sorted({line.product_id for line, *_ in plan})
        # product rows first (FOR NO KEY UPDATE, by id), then their levels: two receipts of one purchase
        # order queue here, and the second reads what the first received
        products = {p.id: p for p in db.session.execute(
            select(Product).where(Product.id.in_(ids)).order_by(Product.id)
            .with_for_update(key_share=True).execution_options(populate_existing=True)).scalars()}
        levels = stock.lock_levels(ids)
        po = db.session.execute(select(PurchaseOrder).where(PurchaseOrder.id == po_id)
                                .execution_options(populate_existing=True)).unique().scalar_one()
        ptx.check(po.label, po.status, "receive")
        reference = po.label + (f" {data['reference']}" if data.get("reference") else "")
        for line, quantity, serials, _damaged in sorted(plan, key=lambda p: p[0].product_id):
            if quantity:
                stock.receive_locked(products[line.product_id], quantity, data.get("location"), serials, reference,
                                     line.unit_cost, levels=levels)
        po = purchasing.get_purchase_order(po_id, lock=True)  # last in the lock order
        ptx.check(po.label, po.status, "receive")
        lines = {line.id: line for line in po.lines}
        for planned, quantity, _serials, damaged in plan:
            line = lines[planned.id]
            line.received += quantity
            line.damaged += damaged
            line.recount()
        complete = all(line.received + line.damaged >= line.quantity for line in po.lines)
        po.status = ptx.RECEIVED if complete else ptx.PARTIALLY_RECEIVED
        if complete:
            po.received_at = utcnow()
        db.session.flush()
        return po


def _plan(po: PurchaseOrder, items: list[dict]) -> list[tuple]:
    """(line, quantity, serials, damaged) per item; a sku not on the purchase order is a 422 naming it."""
    by_sku = {line.product.sku: line for line in po.lines}
    plan, seen = [], set()
    for index, item in enumerate(items):
        where: dict[str, dict[str, dict[str, list[str]]]] = {"lines": {str(index): {}}}
        line = by_sku.get(item["sku"])
        if line is None:
            where["lines"][str(index)]["sku"] = [f"{item['sku']} is not on {po.number}"]
            raise ValidationFailed(f"{item['sku']} is not on purchase order {po.number}", errors=where)
        if item["sku"] in seen:
            where["lines"][str(index)]["sku"] = ["repeated"]
            raise ValidationFailed(f"{item['sku']} is on two lines of the receipt", errors=where)
        seen.add(item["sku"])
        serials = list(item.get("serials") or [])
        quantity = item.get("quantity")
        if quantity is None:
            quantity = len(serials)
        damaged = item.get("damaged") or 0
        if quantity == 0 and damaged == 0:
            where["lines"][str(index)]["quantity"] = ["give a quantity, serials or damaged units"]
            raise ValidationFailed(f"nothing received for {item['sku']}", errors=where)
        if serials and len(serials) != quantity:
            where["lines"][str(index)]["serials"] = [f"expected {quantity} serials, got {len(serials)}"]
            raise ValidationFailed(f"{item['sku']}: give one serial per unit received", errors=where)
        plan.append((line, quantity, serials, damaged))
    return plan
