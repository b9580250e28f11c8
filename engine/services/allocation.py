"""Stock levels locked, allocated and reserved: placement's allocation over pickable locations, reservations
held, released and shipped out, backorders filled as units arrive. ``engine.services.stock`` re-exports these.

Levels are locked (PostgreSQL ``FOR UPDATE``, SQLite: the transaction is ``BEGIN IMMEDIATE``) before they are
changed, in id order so two orders never deadlock."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from engine.db import db, insert_once, utcnow
from engine.errors import InsufficientStock
from engine.models import (
    Order,
    OrderLine,
    Product,
    Reservation,
    StockLevel,
    StockMovement,
)
from engine.services import reorder
from engine.services import serials as serial_units


def lock_levels(product_ids) -> list[StockLevel]:
    """Lock and return the stock levels of the products, in id order."""
    if not product_ids:
        return []
    return list(db.session.execute(_levels_locked(), {"product_ids": sorted(set(product_ids))}).scalars())


@functools.cache
def _levels_locked():
    """The locking SELECT of ``lock_levels``, built once per process. The location (path, pickable) comes in
    the same SELECT: allocation needs it and placement's statement count stays; only the levels are locked
    (FOR UPDATE OF stock_levels)."""
    return (select(StockLevel).where(StockLevel.product_id.in_(bindparam("product_ids", expanding=True)))
            .options(joinedload(StockLevel.location, innerjoin=True))
            .order_by(StockLevel.id).with_for_update(of=StockLevel).execution_options(populate_existing=True))


@dataclass
class Allocation:
    line: OrderLine
    level: StockLevel
    quantity: int


def allocation_order(levels: list[StockLevel], need: int, free: dict) -> list[StockLevel]:
    """The documented rule: only pickable locations; one that can give the whole ``need`` first (fewest
    splits), then the most available first; ties by location path. ``free`` maps a level's key to what
    it can still give."""
    pickable = [lv for lv in levels if lv.location.pickable and free[_key(lv)] > 0]
    return sorted(pickable, key=lambda lv: (free[_key(lv)] < need, -free[_key(lv)], lv.location.code))


def _key(level: StockLevel):
    return level.id if level.id is not None else id(level)


def allocate(lines: list[OrderLine], products: dict[int, Product], levels: list[StockLevel],
             allow_short: bool = False) -> tuple[list[Allocation], dict[int, int]]:
    """Spread each line over the pickable locations by ``allocation_order``.

    Returns the allocations and the shortfall per line index. Raises
    InsufficientStock naming the sku when a product without backorders is short.
    Nothing is changed here.
    """
    by_product: dict[int, list[StockLevel]] = {}
    for level in levels:
        by_product.setdefault(level.product_id, []).append(level)
    free = {_key(level): level.available for level in levels}
    allocations: list[Allocation] = []
    short: dict[int, int] = {}
    errors: dict = {}
    for index, line in enumerate(lines):
        need = line.quantity
        for level in allocation_order(by_product.get(line.product_id, []), need, free):
            take = min(need, free[_key(level)])
            allocations.append(Allocation(line, level, take))
            free[_key(level)] -= take
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
    rows = [{"order_id": order.id, "line_id": a.line.id, "product_id": a.line.product_id,
             "location_id": a.level.location_id, "quantity": a.quantity, "status": "open", "created_at": now}
            for a in allocations]
    db.session.execute(insert_once(Reservation.__table__), rows)
    # serial-tracked lines: the specific units too (one UPDATE each; untracked lines cost nothing here)
    serial_units.reserve_units(order.id, [(None, a.line.id, a.line.product_id, a.level.location_id, a.quantity)
                                          for a in allocations if _tracked(a.line.product_id)], f"order {order.number}")
    per_level: dict[int, int] = {}
    for alloc in allocations:
        per_level[alloc.level.id] = per_level.get(alloc.level.id, 0) + alloc.quantity
    db.session.execute(_add_reserved(), [{"level_id": level_id, "units": units} for level_id, units in per_level.items()])
    for alloc in {id(a.level): a for a in allocations}.values():
        set_committed_value(alloc.level, "reserved", alloc.level.reserved + per_level[alloc.level.id])


@functools.cache
def _add_reserved():
    table = StockLevel.__table__
    return update(table).where(table.c.id == bindparam("level_id")).values(reserved=table.c.reserved + bindparam("units"))


def _tracked(product_id: int) -> bool:
    """Whether the product tracks serials (from the session's identity map when it is loaded: no query)."""
    return db.session.get_one(Product, product_id).track_serials


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
    serial_units.release_units(order.id, [r.id for r in reservations if _tracked(r.product_id)],
                               f"order {order.number} released its reservation")  # serial rows last
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
    serial_units.ship_units(order.id, [line.id for line in order.lines if line.serials], f"order {order.number}")


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
        free = {_key(level): level.available for level in levels}
        for level in allocation_order(levels, line.backordered, free):
            take = min(line.backordered, level.available)
            if take <= 0:
                continue
            level.reserved += take
            line.backordered -= take
            reservation = Reservation(order_id=line.order_id, line=line, product_id=product.id,
                                      location_id=level.location_id, quantity=take, status="open")
            db.session.add(reservation)
            if product.track_serials:  # the oldest units there are this line's now
                db.session.flush()
                serial_units.reserve_units(line.order_id, [(reservation.id, line.id, product.id, level.location_id,
                                                            take)], f"backorder of order {line.order.number}")
        if line.backordered == 0:
            order = line.order
            if order.status == "on_hold" and all(other.backordered == 0 for other in order.lines):
                order_service.release_locked(order, "stock arrived")


def unpick(order: Order) -> None:
    """Serials scanned into a cancelled order go back to stock."""
    serial_units.unpick_units(order.id, [line.id for line in order.lines if line.serials],
                              f"order {order.number} cancelled")
