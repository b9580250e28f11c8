"""Serial units: reserving the specific units of an order line, their history, generated serials, look-ups.

Statuses (engine.models.stock.SERIAL_STATUSES): ``in_stock`` (on hand, free), ``reserved`` (on hand, held for
an order line by an open reservation), ``picked`` (on hand, scanned into an order), ``shipped``, ``returned``
(on an approved customer return, on its way back), ``quarantined`` (on hand at a non-pickable location) and
``scrapped``. Every change of a unit writes a ``serial_events`` row, many units at once in one statement
(``INSERT ... SELECT`` from the units, or one multi-row insert).

Locks: the callers hold the product's stock levels (placement, backorder fill, cancel, pick with serials,
receipts: the product row first), so two reservations of one product never pick the same units; serial rows
come last in the engine's lock order.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import current_app
from sqlalchemy import and_, cast, func, insert, literal, select, update
from stdnum.iso7064 import mod_37_36

from engine.db import db, utcnow
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import (
    Location,
    Order,
    OrderLine,
    Product,
    Reservation,
    SerialEvent,
    SerialSequence,
    SerialUnit,
)
from engine.models.orders import ORDER_NUMBER_OFFSET
from engine.models.stock import SERIAL_STATUSES

UNITS = SerialUnit.__table__
EVENTS = SerialEvent.__table__
CHUNK = 5000  # serials per IN (...) of a duplicate check: far below SQLite's and PostgreSQL's parameter limits


# ---------------------------------------------------------------- history


def log_units(where, kind: str, status: str, *, order_id=None, reference: str | None = None,
              at: datetime | None = None) -> None:
    """One ``INSERT INTO serial_events ... SELECT`` for every unit matching ``where`` (before it changes)."""
    cols = [UNITS.c.id, literal(at or utcnow(), EVENTS.c.at.type), literal(kind, EVENTS.c.kind.type),
            literal(status, EVENTS.c.status.type), cast(literal(order_id), EVENTS.c.order_id.type),
            UNITS.c.location_id, cast(literal(reference), EVENTS.c.reference.type)]
    db.session.execute(EVENTS.insert().from_select(
        ["unit_id", "at", "kind", "status", "order_id", "location_id", "reference"], select(*cols).where(where)))


def log_rows(rows: list[dict]) -> None:
    """Events given one by one (unit_id, kind, status, order_id, location_id, reference): one multi-row insert."""
    if rows:
        now = utcnow()
        db.session.execute(insert(EVENTS), [{"at": now, "order_id": None, "location_id": None, "reference": None,
                                             **row} for row in rows])


# ---------------------------------------------------------------- reservation of units


def reserve_units(order_id: int, holds: list[tuple[int | None, int, int, int, int]], reference: str) -> None:
    """Reserve the oldest in-stock units at each reservation's location.

    ``holds``: (reservation id, line id, product id, location id, quantity) of serial-tracked products; a
    reservation id of None is the line's one open reservation at that location (a placement's: its
    multi-row insert returns no ids). One UPDATE per reservation, one INSERT ... SELECT for their events."""
    if not holds:
        return
    reservations = Reservation.__table__
    for reservation_id, line_id, product_id, location_id, quantity in holds:
        oldest = (select(UNITS.c.id).where(UNITS.c.product_id == product_id, UNITS.c.location_id == location_id,
                                           UNITS.c.status == "in_stock")
                  .order_by(UNITS.c.id).limit(quantity).scalar_subquery())
        holder = reservation_id if reservation_id is not None else (
            select(reservations.c.id).where(reservations.c.line_id == line_id, reservations.c.location_id == location_id,
                                            reservations.c.status == "open").scalar_subquery())
        db.session.execute(update(UNITS).where(UNITS.c.id.in_(oldest))
                           .values(status="reserved", line_id=line_id, reservation_id=holder))
    if all(h[0] is not None for h in holds):
        these = UNITS.c.reservation_id.in_([h[0] for h in holds])
    else:  # new lines: every reserved unit of theirs was reserved just now
        these = UNITS.c.line_id.in_([h[1] for h in holds])
    log_units(and_(these, UNITS.c.status == "reserved"), "reserved", "reserved", order_id=order_id,
              reference=reference)


def release_units(order_id: int, reservation_ids: list[int], reference: str) -> None:
    """Units still only reserved (not picked) by these reservations go back in stock."""
    if not reservation_ids:
        return
    held = and_(UNITS.c.reservation_id.in_(reservation_ids), UNITS.c.status == "reserved")
    log_units(held, "released", "in_stock", order_id=order_id, reference=reference)
    db.session.execute(update(UNITS).where(held).values(status="in_stock", line_id=None, reservation_id=None))


def unpick_units(order_id: int, line_ids: list[int], reference: str) -> None:
    """Units picked into these lines go back in stock (the order was cancelled)."""
    if not line_ids:
        return
    picked = and_(UNITS.c.line_id.in_(line_ids), UNITS.c.status == "picked")
    log_units(picked, "unpicked", "in_stock", order_id=order_id, reference=reference)
    db.session.execute(update(UNITS).where(picked).values(status="in_stock", line_id=None, reservation_id=None))


def ship_units(order_id: int, line_ids: list[int], reference: str) -> None:
    if not line_ids:
        return
    going = and_(UNITS.c.line_id.in_(line_ids), UNITS.c.status.in_(("picked", "reserved")))
    log_units(going, "shipped", "shipped", order_id=order_id, reference=reference)
    db.session.execute(update(UNITS).where(going).values(status="shipped"))


def mark_returned(order_id: int, product_id: int, serials: list[str], reference: str) -> None:
    """Serials on an approved customer return: on their way back, not on hand."""
    if not serials:
        return
    these = and_(UNITS.c.product_id == product_id, UNITS.c.serial.in_(serials), UNITS.c.status == "shipped")
    log_units(these, "returned", "returned", order_id=order_id, reference=reference)
    db.session.execute(update(UNITS).where(these).values(status="returned"))


def restock_units(order_id: int, product_id: int, location_id: int, serials: list[str], reference: str) -> None:
    if not serials:
        return
    these = and_(UNITS.c.product_id == product_id, UNITS.c.serial.in_(serials))
    db.session.execute(update(UNITS).where(these).values(status="in_stock", location_id=location_id, line_id=None,
                                                         reservation_id=None))
    log_units(these, "restocked", "in_stock", order_id=order_id, reference=reference)


# ---------------------------------------------------------------- receipts


def known_serials(product_id: int, serials: list[str]) -> list[str]:
    """The serials of ``serials`` the product already has: one query (PostgreSQL: ``= ANY`` of one array
    parameter), on SQLite one per 5,000 (its parameter limit)."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("SELECT serial FROM serial_units WHERE product_id = %s AND serial = ANY(%s)",
                                    (product_id, serials)).scalars().all()
        return sorted(rows)
    known: list[str] = []
    for start in range(0, len(serials), CHUNK):
        chunk = serials[start:start + CHUNK]
        known += conn.exec_driver_sql(
            f"SELECT serial FROM serial_units WHERE product_id = ? AND serial IN ({', '.join('?' * len(chunk))})",
            (product_id, *chunk)).scalars()
    return sorted(known)


def insert_units(product_id: int, location_id: int, serials: list[str], reference: str | None) -> None:
    """Bulk-insert received units and their ``received`` events (one INSERT ... SELECT).

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(array)``; SQLite: one driver executemany. The
    timestamp is bound once (the column type's own conversion), not per row. The product's row is locked
    by the caller, so every unit of the product newer than the newest before this insert is one of ours."""
    if not serials:
        return
    conn = db.session.connection()
    before = conn.execute(select(func.coalesce(func.max(UNITS.c.id), 0))
                          .where(UNITS.c.product_id == product_id)).scalar_one()
    now = utcnow()
    stamp = UNITS.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    created = stamp(now) if stamp else now
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("INSERT INTO serial_units (product_id, location_id, serial, status, created_at) "
                             "SELECT %s, %s, s, 'in_stock', %s FROM unnest(%s::varchar[]) WITH ORDINALITY AS u(s, n) "
                             "ORDER BY n", (product_id, location_id, created, serials))
    else:
        conn.exec_driver_sql("INSERT INTO serial_units (product_id, location_id, serial, status, created_at) "
                             "VALUES (?, ?, ?, 'in_stock', ?)",
                             [(product_id, location_id, serial, created) for serial in serials])
    log_units(and_(UNITS.c.product_id == product_id, UNITS.c.id > before), "received", "in_stock",
              reference=reference, at=now)


_FIELDS = re.compile(r"\{(\w+)(?::[^{}]*)?\}")
PATTERN_FIELDS = {"sku", "yyyy", "yy", "mm", "seq"}


def pattern_problem(pattern: str) -> str | None:
    names = set(_FIELDS.findall(pattern))
    if "seq" not in names:
        return "the pattern needs {seq} (the product's counter), e.g. {sku}-{yyyy}{seq:06d}"
    unknown = names - PATTERN_FIELDS
    if unknown:
        return f"unknown fields {', '.join(sorted(unknown))}; use {', '.join(sorted(PATTERN_FIELDS))}"
    try:
        pattern.format(sku="X", yyyy="2026", yy="26", mm="01", seq=1)
    except (ValueError, KeyError, IndexError) as exc:
        return f"not a valid pattern: {exc}"
    return None


def check_character(body: str) -> str:
    """ISO 7064 Mod 37,36 over the serial's letters and digits (upper-cased): one of 0-9A-Z."""
    return mod_37_36.calc_check_digit(re.sub(r"[^0-9A-Z]", "", body.upper()) or "0")


def serial_is_valid(serial: str) -> bool:
    return len(serial) > 1 and check_character(serial[:-1]) == serial[-1]


def generate_serials(product: Product, quantity: int, pattern: str | None = None) -> list[str]:
    """``quantity`` new serials from the pattern and the product's counter (caller holds the product's lock)."""
    pattern = pattern or current_app.config.get("SERIAL_PATTERN") or "{sku}-{yyyy}{seq:06d}"
    problem = pattern_problem(pattern)
    if problem:
        raise ValidationFailed(f"serial pattern {pattern!r}: {problem}", errors={"serial_pattern": [problem]},
                               code="invalid_serial_pattern")
    from engine.db import insert_if_absent

    insert_if_absent(SerialSequence, {"product_id": product.id, "next_value": 1}, ["product_id"])
    counter = db.session.execute(select(SerialSequence).where(SerialSequence.product_id == product.id)
                                 .with_for_update().execution_options(populate_existing=True)).scalar_one()
    first = counter.next_value
    counter.next_value = first + quantity
    today = utcnow()
    fixed = {"sku": product.sku, "yyyy": f"{today.year:04d}", "yy": f"{today.year % 100:02d}",
             "mm": f"{today.month:02d}"}
    serials = []
    for seq in range(first, first + quantity):
        body = pattern.format(seq=seq, **fixed)
        serials.append(body + check_character(body))
    if any(len(s) > 128 for s in serials[-1:]):
        raise ValidationFailed("generated serials would be longer than 128 characters",
                               errors={"serial_pattern": ["too long"]}, code="invalid_serial_pattern")
    return serials


# ---------------------------------------------------------------- look-ups


def units_by_serial(serial: str, sku: str | None = None) -> list[tuple[SerialUnit, Product]]:
    stmt = select(SerialUnit, Product).join(Product, Product.id == SerialUnit.product_id).where(
        SerialUnit.serial == serial)
    if sku:
        stmt = stmt.where(Product.sku == sku)
    return [(unit, product) for unit, product in db.session.execute(stmt.order_by(SerialUnit.id))]


def describe(unit: SerialUnit, product: Product) -> dict:
    location = db.session.get(Location, unit.location_id)
    order = None
    if unit.line_id is not None:
        order = db.session.execute(select(Order).join(OrderLine, OrderLine.order_id == Order.id)
                                   .where(OrderLine.id == unit.line_id)).scalar_one_or_none()
    return {"serial": unit.serial, "sku": product.sku, "status": unit.status,
            "location": location.code if location else None,
            "order_id": order.id if order else None, "order_number": order.number if order else None,
            "received_at": unit.created_at.isoformat() if unit.created_at else None}


def history(unit: SerialUnit) -> list[dict]:
    rows = db.session.execute(
        select(SerialEvent, Location.code)
        .outerjoin(Location, Location.id == SerialEvent.location_id)
        .where(SerialEvent.unit_id == unit.id).order_by(SerialEvent.id)).all()
    return [{"at": event.at.isoformat(), "kind": event.kind, "status": event.status, "location": code,
             "order_number": str(ORDER_NUMBER_OFFSET + event.order_id) if event.order_id else None,
             "reference": event.reference} for event, code in rows]


def get_serial(serial: str, sku: str | None = None) -> dict:
    """The unit with this serial (and its history); two products sharing the serial need ``sku``."""
    found = units_by_serial(serial, sku)
    if not found:
        raise NotFound(f"no unit with serial {serial!r}" + (f" of {sku}" if sku else ""))
    if len(found) > 1:
        skus = [p.sku for _, p in found]
        raise Conflict(f"serial {serial!r} belongs to {len(found)} products ({', '.join(skus)}): "
                       f"add ?sku= to say which", errors={"sku": skus}, code="serial_ambiguous")
    unit, product = found[0]
    return {**describe(unit, product), "history": history(unit)}


def list_serials(sku: str, status: str | None, limit: int, cursor: int | None) -> tuple[list[dict], int | None]:
    product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    if status is not None and status not in SERIAL_STATUSES:
        raise ValidationFailed(f"unknown status {status!r}", errors={"status": [f"one of {', '.join(SERIAL_STATUSES)}"]})
    stmt = (select(SerialUnit, Location.code).join(Location, Location.id == SerialUnit.location_id)
            .where(SerialUnit.product_id == product.id))
    if status:
        stmt = stmt.where(SerialUnit.status == status)
    if cursor:
        stmt = stmt.where(SerialUnit.id > cursor)
    rows = db.session.execute(stmt.order_by(SerialUnit.id).limit(limit + 1)).all()
    items = [{"serial": u.serial, "status": u.status, "location": code} for u, code in rows[:limit]]
    return items, rows[limit - 1][0].id if len(rows) > limit else None
