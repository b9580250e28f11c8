"""The stock postings: COGS against inventory when an order ships, restocked units back when a return is
received, and received or adjusted units into inventory (``periodic_tasks``), each at the product's unit
cost; a unit that moves without one is recorded as a cost gap."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.plugin_api import (
    MOVEMENT_ADJUSTMENT,
    MOVEMENT_RECEIPT,
    MOVEMENT_RETURN,
    MOVEMENT_SHIPMENT,
    Product,
    StockMovement,
    as_utc,
    db,
    insert_if_absent,
    utcnow,
)

from .journal import Line, _state, book_payments, event_date, exists, lock_books, post
from .models import CostGap, JournalEntry, Posting
from .settings import current


def _cost_gap(source_key: str, kind: str, order_id: int | None, sku: str, quantity: int) -> None:
    insert_if_absent(CostGap, {"source_key": source_key, "kind": kind, "order_id": order_id, "sku": sku,
                               "quantity": quantity, "created_at": utcnow()},
                     ["source_key", "sku"])


def _movements(order_id: int, kind: str) -> dict[int, int]:
    rows = db.session.execute(select(StockMovement.product_id, func.sum(StockMovement.quantity)).where(
        StockMovement.order_id == order_id, StockMovement.kind == kind).group_by(StockMovement.product_id)).all()
    return {product_id: int(quantity) for product_id, quantity in rows}


def _booked_quantities(order_id: int, kind: str, role: str) -> dict[str, tuple[int, int]]:
    """sku -> (quantity, amount) already posted on ``role`` by the order's entries of ``kind``."""
    rows = db.session.execute(select(Posting.sku, func.sum(Posting.quantity), func.sum(Posting.amount))
                              .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                              .where(JournalEntry.order_id == order_id, JournalEntry.kind == kind,
                                     Posting.role == role, Posting.sku.is_not(None))
                              .group_by(Posting.sku)).all()
    return {sku: (int(qty or 0), int(amount or 0)) for sku, qty, amount in rows if sku is not None}  # IS NOT NULL


def book_shipment(order, shipment, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:shipment:{order.id}"
    books = lock_books(order)
    if exists(key):
        return None
    day = event_date(event)
    book_payments(order, day)
    shipped = {pid: -qty for pid, qty in _movements(order.id, MOVEMENT_SHIPMENT).items() if qty}
    products = {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(list(shipped)))).scalars()}
    lines: list[Line] = []
    for product_id, quantity in sorted(shipped.items()):
        product = products[product_id]
        if product.unit_cost is None:
            _cost_gap(key, "shipment", order.id, product.sku, quantity)
            continue
        value = product.unit_cost * quantity
        memo = f"{quantity} x {product.unit_cost}"
        lines.append(Line("cogs", settings.account("cogs"), value, product.currency, sku=product.sku,
                          quantity=quantity, memo=memo))
        lines.append(Line("inventory", settings.account("inventory"), -value, product.currency, sku=product.sku,
                          quantity=-quantity, memo=memo))
    if shipment is not None and shipment.price:
        lines.append(Line("shipping_costs", settings.account("shipping_costs"), shipment.price, books.currency,
                          memo=f"{shipment.carrier} {shipment.service}"))
        lines.append(Line("carrier_payable", settings.account("carrier_payable"), -shipment.price, books.currency,
                          memo=shipment.carrier))
    tracking = f", tracking {shipment.tracking_number}" if shipment is not None and shipment.tracking_number else ""
    return post(key, "shipment", day, f"Order {order.number}: shipped{tracking}", lines, event_id=event["id"],
                order=order, source_id=shipment.id if shipment is not None else None, checked=True)


def book_return(order, order_return, event: dict) -> int | None:
    settings = current()
    key = f"ev:{event['id']}:return:{order.id}"
    lock_books(order)
    if exists(key):
        return None
    day = event_date(event)
    restocked = _movements(order.id, MOVEMENT_RETURN)
    booked = _booked_quantities(order.id, "return", "inventory")
    shipped = _booked_quantities(order.id, "shipment", "cogs")
    products = {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(list(restocked)))).scalars()}
    lines: list[Line] = []
    for product_id, quantity in sorted(restocked.items()):
        product = products[product_id]
        todo = quantity - booked.get(product.sku, (0, 0))[0]
        if todo <= 0:
            continue
        ship_qty, ship_value = shipped.get(product.sku, (0, 0))
        # back at the cost it left with; the current unit cost when it left without one
        unit = ship_value // ship_qty if ship_qty else product.unit_cost
        if unit is None:
            _cost_gap(key, "return", order.id, product.sku, todo)
            continue
        memo = f"{todo} x {unit}"
        lines.append(Line("inventory", settings.account("inventory"), unit * todo, product.currency, sku=product.sku,
                          quantity=todo, memo=memo))
        lines.append(Line("cogs", settings.account("cogs"), -unit * todo, product.currency, sku=product.sku,
                          quantity=-todo, memo=memo))
    what = f"return {order_return.id}" if order_return is not None else "return"
    return post(key, "return", day, f"Order {order.number}: {what} restocked", lines, event_id=event["id"],
                order=order, source_id=order_return.id if order_return is not None else None, checked=True)


STOCK_KINDS = (MOVEMENT_RECEIPT, MOVEMENT_ADJUSTMENT)


LOOKBACK = 1000  # movements committed late (concurrent receipts) are still found


def book_stock_movements(limit: int = 500) -> int:
    """Post stock receipts (and adjustments) not posted yet, oldest first: inventory against goods
    received (adjustments: against inventory adjustments), at the product's unit cost. Returns how many
    movements were handled."""
    settings = current()
    cursor = _state("stock_scanned")
    window = select(StockMovement.id).where(StockMovement.id > max(0, cursor.value - LOOKBACK)) \
        .order_by(StockMovement.id).limit(limit * 20).subquery()
    scanned = db.session.execute(select(func.max(window.c.id))).scalar()
    rows = db.session.execute(
        select(StockMovement, Product).join(Product, Product.id == StockMovement.product_id)
        .where(StockMovement.id.in_(select(window.c.id)), StockMovement.kind.in_(STOCK_KINDS))
        .order_by(StockMovement.id).limit(limit)).all()
    if len(rows) == limit:  # more receipts than one round takes: continue after the last one next time
        scanned = rows[-1][0].id
    if scanned is not None and scanned > cursor.value:
        cursor.value = scanned
    if not rows:
        return 0
    keys = [f"movement:{movement.id}" for movement, _ in rows]
    done = set(db.session.execute(select(JournalEntry.source_key).where(JournalEntry.source_key.in_(keys))).scalars())
    done |= set(db.session.execute(select(CostGap.source_key).where(CostGap.source_key.in_(keys))).scalars())
    handled = 0
    for movement, product in rows:
        key = f"movement:{movement.id}"
        if key in done or not movement.quantity:
            continue
        handled += 1
        kind = "stock_receipt" if movement.kind == MOVEMENT_RECEIPT else "stock_adjustment"
        if product.unit_cost is None:
            _cost_gap(key, kind, None, product.sku, movement.quantity)
            continue
        value = product.unit_cost * movement.quantity
        memo = f"{movement.quantity} x {product.unit_cost}"
        other = "goods_received" if kind == "stock_receipt" else "inventory_adjustments"
        lines = [Line("inventory", settings.account("inventory"), value, product.currency, sku=product.sku,
                      quantity=movement.quantity, memo=memo),
                 Line(other, settings.account(other), -value, product.currency, sku=product.sku, memo=memo)]
        what = "received" if kind == "stock_receipt" else "adjusted"
        ref = f" ({movement.reference})" if movement.reference else ""
        post(key, kind, as_utc(movement.created_at).date(), f"Stock {what}: {product.sku} x{movement.quantity}{ref}",
             lines, source_id=movement.id, payee="")
    return handled
