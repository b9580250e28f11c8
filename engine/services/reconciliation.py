"""Reconciliation: per product and location, the stock level against the ledger, the serial units and
the open reservations. Every disagreement is one difference row.

* ``on_hand`` == the sum of the movement ledger;
* ``on_hand`` == the serial units in an on-hand status (in_stock, reserved, picked, quarantined) of a
  serial-tracked product (an untracked product has no units);
* ``reserved`` == the sum of the open reservations.

It streams: products are walked in chunks of ids, and each chunk costs four GROUP BY queries (levels,
ledger, units, reservations) plus the chunk's page of products, whatever the number of rows, so memory
holds one chunk at a time. All queries read one snapshot (PostgreSQL: a REPEATABLE READ READ ONLY
transaction on a connection of its own; SQLite: one read transaction), so concurrent orders never show
up as differences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from engine.db import db
from engine.models import Location, Product, Reservation, SerialUnit, StockLevel, StockMovement
from engine.services.adjustments import ON_HAND_STATUSES

CHUNK = 2000
FIELDS = ("sku", "location", "check", "level", "actual", "difference", "message")
CHECKS = {"ledger": ("on_hand", "the ledger's sum"), "serials": ("on_hand", "serial units on hand"),
          "reservations": ("reserved", "open reservations")}


@dataclass
class Totals:
    products: int = 0
    levels: int = 0
    differences: int = 0


def _grouped(conn, table, column, where, ids_from: int, ids_to: int) -> dict:
    stmt = (select(table.c.product_id, table.c.location_id, column).where(
        table.c.product_id > ids_from, table.c.product_id <= ids_to, *where)
        .group_by(table.c.product_id, table.c.location_id))
    return {(p, loc): int(v or 0) for p, loc, v in conn.execute(stmt)}


def _chunk_differences(conn, products: list, locations: dict[int, str]) -> tuple[list[dict], int]:
    low, high = products[0][0] - 1, products[-1][0]
    levels_t, moves_t, units_t, res_t = (StockLevel.__table__, StockMovement.__table__, SerialUnit.__table__,
                                         Reservation.__table__)
    levels = {(p, loc): (on_hand, reserved) for p, loc, on_hand, reserved in conn.execute(
        select(levels_t.c.product_id, levels_t.c.location_id, levels_t.c.on_hand, levels_t.c.reserved)
        .where(levels_t.c.product_id > low, levels_t.c.product_id <= high))}
    ledger = _grouped(conn, moves_t, func.sum(moves_t.c.quantity), [], low, high)
    units = _grouped(conn, units_t, func.count(units_t.c.id), [units_t.c.status.in_(ON_HAND_STATUSES)], low, high)
    reserved = _grouped(conn, res_t, func.sum(res_t.c.quantity), [res_t.c.status == "open"], low, high)
    info = {pid: (sku, tracked) for pid, sku, tracked in products}
    found = []
    for key in sorted(set(levels) | set(ledger) | set(units) | set(reserved)):
        pid, loc = key
        sku, tracked = info[pid]
        on_hand, held = levels.get(key, (0, 0))
        pairs = [("ledger", on_hand, ledger.get(key, 0)), ("reservations", held, reserved.get(key, 0))]
        if tracked or units.get(key):
            pairs.insert(1, ("serials", on_hand, units.get(key, 0)))
        for check, level, actual in pairs:
            if level != actual:
                found.append(_row(sku, locations.get(loc, str(loc)), check, level, actual, key in levels))
    return found, len(levels)


def _row(sku: str, location: str, check: str, level: int, actual: int, has_level: bool) -> dict:
    field, source = CHECKS[check]
    message = (f"{sku} at {location}: {field} {level} but {source} {actual}" if has_level
               else f"{sku} at {location}: no stock level, but {source} {actual}")
    return {"sku": sku, "location": location, "check": check, "level": level, "actual": actual,
            "difference": level - actual, "message": message}


def walk(conn, chunk: int = CHUNK, progress: Callable[[int], None] | None = None,
         totals: Totals | None = None) -> Iterator[dict]:
    """Yield every difference, chunk by chunk of product ids; ``progress(n)`` after each chunk of n products."""
    totals = totals if totals is not None else Totals()
    locations = dict(conn.execute(select(Location.id, Location.code)).all())
    products_t = Product.__table__
    last = 0
    while True:
        page = conn.execute(select(products_t.c.id, products_t.c.sku, products_t.c.track_serials)
                            .where(products_t.c.id > last).order_by(products_t.c.id).limit(chunk)).all()
        if not page:
            return
        found, levels = _chunk_differences(conn, page, locations)
        totals.products += len(page)
        totals.levels += levels
        totals.differences += len(found)
        yield from found
        last = page[-1][0]
        if progress:
            progress(len(page))


def snapshot():
    """A connection reading one snapshot of the database (see the module docstring); close it after."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    else:
        conn = engine.connect()
    conn.begin()
    return conn


def product_count() -> int:
    return db.session.execute(select(func.count(Product.id))).scalar_one()


def reconcile(chunk: int = CHUNK) -> dict:
    """Every difference, and what was checked (for the REST API)."""
    totals = Totals()
    with snapshot() as conn:
        differences = list(walk(conn, chunk, totals=totals))
    return {"ok": not differences, "products": totals.products, "levels": totals.levels,
            "differences": differences}
