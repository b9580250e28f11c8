"""Stock: receipts, reservations, releases, shipments out of stock, backorder allocation.

Every change of on-hand stock writes a row in the movement ledger; on-hand is
the ledger's sum. Rows are locked (PostgreSQL ``FOR UPDATE``, SQLite: the
transaction is ``BEGIN IMMEDIATE``) before they are changed, in id order so two
orders never deadlock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from engine.db import db, insert_if_absent, transaction, utcnow
from engine.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from engine.models import (
    Location,
    Order,
    OrderLine,
    Product,
    PurchaseOrder,
    Reservation,
    SerialUnit,
    StockLevel,
    StockMovement,
)
from engine.models.stock import DEFAULT_LOCATION
from engine.services import purchasing, reorder


def default_location() -> Location:
    return _get_or_create_location(DEFAULT_LOCATION, "Main warehouse")


def _location(code: str | None) -> Location:
    if not code or code == DEFAULT_LOCATION:
        return default_location()
    return _get_or_create_location(code, code)


def _get_or_create_location(code: str, name: str) -> Location:
    stmt = select(Location).where(Location.code == code)
    location = db.session.execute(stmt).scalar_one_or_none()
    if location is None:
        insert_if_absent(Location, {"code": code, "name": name}, ["code"])
        location = db.session.execute(stmt).scalar_one()
    return location


def lock_levels(product_ids) -> list[StockLevel]:
    """Lock and return the stock levels of the products, in id order."""
    if not product_ids:
        return []
    stmt = (select(StockLevel).where(StockLevel.product_id.in_(sorted(set(product_ids))))
            .order_by(StockLevel.id).with_for_update().execution_options(populate_existing=True))
    return list(db.session.execute(stmt).scalars())


def _level(product: Product, location: Location, levels: list[StockLevel] | None = None) -> StockLevel:
    for level in levels if levels is not None else lock_levels([product.id]):
        if level.product_id == product.id and level.location_id == location.id:  # levels: maybe other products' too
            return level
    insert_if_absent(StockLevel, {"product_id": product.id, "location_id": location.id, "on_hand": 0, "reserved": 0},
                     ["product_id", "location_id"])
    return next(level for level in lock_levels([product.id]) if level.location_id == location.id)


def get_product(sku: str, field: str = "sku", *, lock: bool = False) -> Product:
    """The product of a request's ``field``: an unknown sku is a 422 naming it; ``lock`` takes its row lock."""
    stmt = select(Product).where(Product.sku == sku)
    if lock:
        # FOR NO KEY UPDATE: foreign-key checks of other transactions (FOR KEY SHARE) pass (catalog.lock_product)
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    product = db.session.execute(stmt).scalar_one_or_none()
    if product is None:
        raise ValidationFailed(f"unknown sku {sku!r}", errors={field: [f"unknown sku {sku!r}"]})
    return product


def receive_stock(sku: str, quantity: int, location: str | None = None, serials: list[str] | None = None,
                  reference: str | None = None, unit_cost: int | None = None) -> dict:
    """Add ``quantity`` units to stock (one ledger row), register serials, fill backorders."""
    with transaction():
        # the product's row first (PATCH /products switches track_serials and archives under it), then its
        # levels before checking serials: two receipts of one serial are one decision
        product = get_product(sku, lock=True)
        levels = lock_levels([product.id])
        receive_locked(product, quantity, location, serials, reference, unit_cost, levels=levels)
        return stock_summary(product)


def receive_locked(product: Product, quantity: int, location: str | None = None, serials: list[str] | None = None,
                   reference: str | None = None, unit_cost: int | None = None, *,
                   levels: list[StockLevel]) -> None:
    """The core of a receipt, shared by ``POST /stock/receipts`` and purchase-order receiving: the caller
    holds the product's row lock and its ``levels`` (engine lock order). One ``receipt`` movement, the
    serials registered, backorders filled (oldest order first), then the product's reorder rules that the
    receipt lifted above their point are reset (they may fire again on the next crossing)."""
    sku = product.sku
    serials = list(serials or [])
    if product.archived_at is not None:
        raise ValidationFailed(f"{sku} is archived: it receives no stock until it is brought back "
                               f"(PATCH /products/{sku} with archived: false)",
                               errors={"sku": [f"{sku} is archived"]}, code="product_archived")
    if quantity <= 0:
        raise ValidationFailed("quantity must be positive", errors={"quantity": ["must be at least 1"]})
    if product.track_serials:
        if len(serials) != quantity:
            raise ValidationFailed(
                f"{sku} is serial-tracked: give exactly one serial per unit ({quantity})",
                errors={"serials": [f"expected {quantity} serials, got {len(serials)}"]})
        dupes = [s for s, n in Counter(serials).items() if n > 1]
        if dupes:
            raise ValidationFailed("serials repeat", errors={"serials": [f"repeated: {', '.join(dupes)}"]})
        known = db.session.execute(select(SerialUnit.serial).where(
            SerialUnit.product_id == product.id, SerialUnit.serial.in_(serials))).scalars().all()
        if known:
            raise Conflict(f"serials already known: {', '.join(sorted(known))}",
                           errors={"serials": [f"already known: {', '.join(sorted(known))}"]},
                           code="serial_exists")
    elif serials:
        raise ValidationFailed(f"{sku} does not track serials",
                               errors={"serials": ["this product does not track serials"]})
    loc = _location(location)
    level = _level(product, loc, levels)
    level.on_hand += quantity
    db.session.add(StockMovement(product_id=product.id, location_id=loc.id, quantity=quantity,
                                 kind="receipt", reference=reference))
    db.session.add_all(SerialUnit(product_id=product.id, location_id=loc.id, serial=s, status="in_stock")
                       for s in serials)
    if unit_cost is not None:
        product.unit_cost = unit_cost
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent first receipt of the product stored one of the serials
        raise Conflict("a serial of this receipt was received a moment ago by another request",
                       errors={"serials": ["already known"]}, code="serial_exists") from None
    allocate_backorders(product)
    reorder.note_rise([product.id])


def stock_summary(product: Product) -> dict:
    rows = db.session.execute(select(StockLevel, Location.code).join(Location)
                              .where(StockLevel.product_id == product.id).order_by(StockLevel.id)).all()
    levels = [level for level, _ in rows]
    locations = [{"location": code, "on_hand": lv.on_hand, "reserved": lv.reserved, "available": lv.available}
                 for lv, code in rows]
    on_hand = sum(lv.on_hand for lv in levels)
    reserved = sum(lv.reserved for lv in levels)
    return {"sku": product.sku, "on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved,
            "locations": locations}


def get_stock(sku: str) -> dict:
    product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    return stock_summary(product)


@dataclass
class Allocation:
    line: OrderLine
    level: StockLevel
    quantity: int


def allocate(lines: list[OrderLine], products: dict[int, Product], levels: list[StockLevel],
             allow_short: bool = False) -> tuple[list[Allocation], dict[int, int]]:
    """Spread each line over the locations with stock (most available first).

    Returns the allocations and the shortfall per line index. Raises
    InsufficientStock naming the sku when a product without backorders is short.
    Nothing is changed here.
    """
    by_product: dict[int, list[StockLevel]] = {}
    for level in levels:
        by_product.setdefault(level.product_id, []).append(level)
    free = {level.id if level.id is not None else id(level): level.available for level in levels}
    allocations: list[Allocation] = []
    short: dict[int, int] = {}
    errors: dict = {}
    for index, line in enumerate(lines):
        need = line.quantity
        for level in sorted(by_product.get(line.product_id, []), key=lambda lv: -lv.available):
            key = level.id if level.id is not None else id(level)
            take = min(need, free[key])
            if take > 0:
                allocations.append(Allocation(line, level, take))
                free[key] -= take
                need -= take
            if need == 0:
                break
        if need:
            product = products[line.product_id]
            if product.allow_backorder or allow_short:
                short[index] = need
            else:
                available = line.quantity - need
                errors[str(index)] = {"sku": [f"only {available} of {product.sku} available, {line.quantity} asked"]}
    if errors:
        skus = ", ".join(products[lines[int(i)].product_id].sku for i in errors)
        raise InsufficientStock(f"insufficient stock for {skus}", errors={"lines": errors})
    return allocations, short


def reserve(order: Order, allocations: list[Allocation]) -> None:
    """Hold the allocated units for the order (levels must be locked; lines flushed).

    The hot path of placement: one multi-row INSERT of reservations and one
    UPDATE per level (executemany), with the loaded levels kept in step."""
    if not allocations:
        return
    now = utcnow()
    db.session.execute(insert(Reservation.__table__), [
        {"order_id": order.id, "line_id": a.line.id, "product_id": a.line.product_id,
         "location_id": a.level.location_id, "quantity": a.quantity, "status": "open", "created_at": now}
        for a in allocations])
    per_level: dict[int, int] = {}
    for alloc in allocations:
        per_level[alloc.level.id] = per_level.get(alloc.level.id, 0) + alloc.quantity
    table = StockLevel.__table__
    db.session.execute(update(table).where(table.c.id == bindparam("level_id"))
                       .values(reserved=table.c.reserved + bindparam("units")),
                       [{"level_id": level_id, "units": units} for level_id, units in per_level.items()])
    for alloc in {id(a.level): a for a in allocations}.values():
        set_committed_value(alloc.level, "reserved", alloc.level.reserved + per_level[alloc.level.id])


def open_reservations(order: Order) -> list[Reservation]:
    return list(db.session.execute(select(Reservation).where(
        Reservation.order_id == order.id, Reservation.status == "open").order_by(Reservation.id)).scalars())


def release(order: Order) -> int:
    """Give the order's open reservations back to available stock; returns the units released."""
    reservations = open_reservations(order)
    levels = {(lv.product_id, lv.location_id): lv for lv in lock_levels([r.product_id for r in reservations])}
    for res in reservations:
        levels[(res.product_id, res.location_id)].reserved -= res.quantity
        res.status = "released"
    if reservations:  # the freed units may lift reorder rules above their point (rules after orders)
        reorder.note_rise([r.product_id for r in reservations])
    return sum(r.quantity for r in reservations)


def ship_out(order: Order) -> None:
    """Turn the open reservations into shipment movements (on-hand and reserved go down)."""
    reservations = open_reservations(order)
    levels = {(lv.product_id, lv.location_id): lv for lv in lock_levels([r.product_id for r in reservations])}
    for res in reservations:
        level = levels[(res.product_id, res.location_id)]
        level.reserved -= res.quantity
        level.on_hand -= res.quantity
        res.status = "fulfilled"
        db.session.add(StockMovement(product_id=res.product_id, location_id=res.location_id, quantity=-res.quantity,
                                     kind="shipment", order_id=order.id, reference=f"order {order.number}"))
    line_ids = [line.id for line in order.lines if line.serials]
    if line_ids:
        for unit in db.session.execute(select(SerialUnit).where(SerialUnit.line_id.in_(line_ids))).scalars():
            unit.status = "shipped"


def restock(order: Order, product: Product, quantity: int, location: str | None, serials: list[str],
            reference: str) -> None:
    """Put returned units back on hand (a ``return`` movement)."""
    loc = _location(location)
    level = _level(product, loc)
    level.on_hand += quantity
    db.session.add(StockMovement(product_id=product.id, location_id=loc.id, quantity=quantity, kind="return",
                                 order_id=order.id, reference=reference))
    if serials:
        for unit in db.session.execute(select(SerialUnit).where(
                SerialUnit.product_id == product.id, SerialUnit.serial.in_(serials))).scalars():
            unit.status, unit.location_id, unit.line_id = "in_stock", loc.id, None
    db.session.flush()
    allocate_backorders(product)
    reorder.note_rise([product.id])


def draft_purchase_order(product: Product, quantity: int, reason: str) -> PurchaseOrder:
    """Add ``quantity`` of the product to its supplier's open draft purchase order (or, without a
    supplier, the product's own), drafting one if there is none (fires purchase_order_created)."""
    return purchasing.add_to_draft(product, quantity, reason, minimum=product.reorder_quantity or 0)


def check_low_stock(products: list[Product], before: dict[int, int], levels: list[StockLevel]) -> None:
    """Fire stock_low once per crossing of a reorder rule and put the shortfall on a draft purchase order.

    ``before``: each product's available units over all locations before the change; ``levels``: the
    products' levels, locked, after it (engine/services/reorder.py)."""
    reorder.check(products, before, levels)


def available_by_product(levels: list[StockLevel]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for level in levels:
        totals[level.product_id] = totals.get(level.product_id, 0) + level.available
    return totals


def allocate_backorders(product: Product) -> None:
    """Give newly received units to backordered lines, oldest order first; release completed orders."""
    from engine.services import orders as order_service

    lines = list(db.session.execute(
        select(OrderLine).join(Order).where(OrderLine.product_id == product.id, OrderLine.backordered > 0,
                                            Order.status.in_(("placed", "paid", "on_hold")))
        .order_by(OrderLine.order_id, OrderLine.id).with_for_update()).scalars())
    if not lines:
        return
    levels = lock_levels([product.id])
    for line in lines:
        for level in sorted(levels, key=lambda lv: -lv.available):
            take = min(line.backordered, level.available)
            if take <= 0:
                continue
            level.reserved += take
            line.backordered -= take
            db.session.add(Reservation(order_id=line.order_id, line=line, product_id=product.id,
                                       location_id=level.location_id, quantity=take, status="open"))
        if line.backordered == 0:
            order = line.order
            if order.status == "on_hold" and all(other.backordered == 0 for other in order.lines):
                order_service.release_locked(order, "stock arrived")


def unpick(order: Order) -> None:
    """Serials scanned into a cancelled order go back to stock."""
    line_ids = [line.id for line in order.lines if line.serials]
    if not line_ids:
        return
    for unit in db.session.execute(select(SerialUnit).where(SerialUnit.line_id.in_(line_ids))).scalars():
        unit.status, unit.line_id = "in_stock", None
