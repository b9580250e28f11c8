"""Locations, transfers between them, and the pick list (issue #11, warehouse).

A location is named by its path (``MAIN``, ``MAIN/A-01-3``: engine/domain/locations.py). Only
pickable locations give stock to orders (``stock.allocation_order``); a quarantine location holds
stock that is on hand but never allocated. A transfer moves available units of one product from one
location to another: one ``transfer`` movement out, one in, and a ``stock_transfers`` row linking
them, in one transaction under the engine's lock order: the product's row (``FOR NO KEY UPDATE``),
then its stock levels (id order), then the serial units moved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from engine.db import db, transaction
from engine.domain import locations as rules
from engine.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from engine.models import Location, OrderLine, Product, Reservation, SerialUnit, StockLevel, StockMovement
from engine.models.locations import StockTransfer
from engine.models.stock import DEFAULT_LOCATION
from engine.services import orders as order_service
from engine.services import serials as serial_history
from engine.services import stock

# a serial unit moves only while it sits on a shelf: reserved, picked, shipped units stay where they are
TRANSFERABLE_SERIALS = ("in_stock",)
MAX_STOCK_ROWS = 1000


def find(path: str, field: str = "location") -> Location:
    """The location at ``path`` (``MAIN`` always exists): unknown is a 422 naming the field and the path."""
    if path == DEFAULT_LOCATION:
        return stock.default_location()
    location = db.session.execute(select(Location).where(Location.code == path)).scalar_one_or_none()
    if location is None:
        problems = rules.path_errors(path)
        detail = problems[0] if problems else "create it with POST /locations"
        raise ValidationFailed(f"unknown location {path!r}: {detail}", errors={field: [f"unknown location {path!r}"]},
                               code="unknown_location")
    return location


def create_location(path: str, name: str | None = None, kind: str | None = None,
                    pickable: bool | None = None) -> Location:
    """Create a warehouse (a one-segment path) or a location inside an existing one."""
    problems = rules.path_errors(path)
    if problems:
        raise ValidationFailed(f"invalid location path: {problems[0]}", errors={"path": problems},
                               code="invalid_location")
    parent_path = rules.parent_path(path)
    kind = kind or ("warehouse" if parent_path is None else "bin")
    if (parent_path is None) != (kind == rules.WAREHOUSE):
        message = ("a one-segment path is a warehouse" if parent_path is None
                   else "a warehouse is a one-segment path: this one is inside " + parent_path)
        raise ValidationFailed(f"{path}: {message}", errors={"kind": [message]})
    if kind == "quarantine" and pickable:
        raise ValidationFailed("a quarantine location is never pickable", errors={"pickable": ["must be false"]})
    with transaction():
        parent = find(parent_path, "path") if parent_path is not None else None
        if db.session.execute(select(Location.id).where(Location.code == path)).first() is not None:
            raise Conflict(f"location {path} exists", errors={"path": ["exists"]}, code="location_exists")
        if pickable is None:  # inside a non-pickable place (a quarantine area) nothing is pickable by default
            pickable = rules.PICKABLE_BY_DEFAULT[kind] and (parent is None or parent.pickable)
        location = Location(code=path, name=name or path, kind=kind, parent_id=parent.id if parent else None,
                            pickable=pickable)
        db.session.add(location)
        db.session.flush()
    return location


def update_location(path: str, changes: dict) -> Location:
    """Rename a location or switch ``pickable`` (existing reservations there stay; new ones skip it)."""
    with transaction():
        location = db.session.execute(select(Location).where(Location.code == path).with_for_update()
                                      ).scalar_one_or_none()
        if location is None:
            raise NotFound(f"no location {path!r}")
        if changes.get("pickable") and location.kind == "quarantine":
            raise ValidationFailed("a quarantine location is never pickable", errors={"pickable": ["must be false"]})
        for name in ("name", "pickable"):
            if name in changes:
                setattr(location, name, changes[name])
    return location


def _totals(location_ids: list[int]) -> dict[int, tuple[int, int]]:
    rows = db.session.execute(
        select(StockLevel.location_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
        .where(StockLevel.location_id.in_(location_ids)).group_by(StockLevel.location_id)).all()
    return {lid: (int(on_hand or 0), int(reserved or 0)) for lid, on_hand, reserved in rows}


def list_locations(*, warehouse: str | None = None, kind: str | None = None, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[dict], str | None]:
    """Locations in path order (the walk order), with their stock totals; ``cursor`` is the last path seen."""
    stmt = select(Location).order_by(Location.code)
    if warehouse:
        stmt = stmt.where(or_(Location.code == warehouse, Location.code.startswith(warehouse + "/", autoescape=True)))
    if kind:
        stmt = stmt.where(Location.kind == kind)
    if cursor:
        stmt = stmt.where(Location.code > cursor)
    rows = list(db.session.execute(stmt.limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    totals = _totals([loc.id for loc in rows]) if rows else {}
    return [describe(loc, *totals.get(loc.id, (0, 0))) for loc in rows], (rows[-1].code if more else None)


def describe(location: Location, on_hand: int = 0, reserved: int = 0) -> dict:
    return {"path": location.code, "name": location.name, "kind": location.kind,
            "warehouse": location.warehouse, "parent": location.code.rsplit("/", 1)[0] if location.parent_id else None,
            "pickable": location.pickable, "on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved}


def get_location(path: str) -> dict:
    """A location and the stock held there (products with units on hand or reserved, by sku)."""
    location = db.session.execute(select(Location).where(Location.code == path)).scalar_one_or_none()
    if location is None:
        raise NotFound(f"no location {path!r}")
    rows = db.session.execute(
        select(StockLevel, Product.sku, Product.name).join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.location_id == location.id, or_(StockLevel.on_hand > 0, StockLevel.reserved > 0))
        .order_by(Product.sku).limit(MAX_STOCK_ROWS + 1)).all()
    totals = _totals([location.id]).get(location.id, (0, 0))
    body = describe(location, *totals)
    body["stock"] = [{"sku": sku, "name": name, "on_hand": lv.on_hand, "reserved": lv.reserved,
                      "available": lv.available} for lv, sku, name in rows[:MAX_STOCK_ROWS]]
    body["stock_truncated"] = len(rows) > MAX_STOCK_ROWS
    return body


# ---------------------------------------------------------------- transfers


def transfer(sku: str, *, source: str, destination: str, quantity: int | None = None,
             serials: list[str] | None = None, reference: str | None = None) -> dict:
    """Move available units of ``sku`` from ``source`` to ``destination``: two movements, one transfer row.

    Archived products may be transferred: moving what is on hand is housekeeping, not buying in."""
    serials = list(serials or [])
    if source == destination:
        raise ValidationFailed(f"from and to are both {source}: a transfer needs two locations",
                               errors={"to": ["must differ from from"]}, code="same_location")
    if quantity is None and not serials:
        raise ValidationFailed("give quantity or serials", errors={"quantity": ["quantity or serials is required"]})
    with transaction():
        product = stock.get_product(sku, lock=True)                     # 0. the product's row
        origin, target = find(source, "from"), find(destination, "to")
        levels = stock.lock_levels([product.id])                         # 1. its levels, id order
        if product.track_serials or serials:
            units = _serial_units(product, origin, serials, quantity)  # never empty: it refuses no serials
            moved = len(units)
        else:
            units = []
            assert quantity is not None  # no quantity and no serials was refused above
            moved = quantity
        out_level = next((lv for lv in levels if lv.location_id == origin.id), None)
        available = out_level.available if out_level is not None else 0
        if out_level is None or moved > available:
            held = f" (on hand {out_level.on_hand}, reserved {out_level.reserved})" if out_level is not None else ""
            raise InsufficientStock(f"only {available} of {sku} available at {origin.code}{held}, {moved} asked",
                                    errors={"quantity": [f"only {available} available at {origin.code}"]})
        before = stock.available_by_product(levels)
        in_level = stock._level(product, target, levels)
        levels = stock.lock_levels([product.id]) if in_level not in levels else levels
        row = StockTransfer(product_id=product.id, from_location_id=origin.id, to_location_id=target.id,
                            quantity=moved, serials=[u.serial for u in units], reference=reference)
        db.session.add(row)
        db.session.flush()
        note = f"transfer {row.id}" + (f": {reference}" if reference else "")
        out_level.on_hand -= moved
        in_level.on_hand += moved
        db.session.add_all([
            StockMovement(product_id=product.id, location_id=origin.id, quantity=-moved, kind="transfer",
                          reference=note[:200]),
            StockMovement(product_id=product.id, location_id=target.id, quantity=moved, kind="transfer",
                          reference=note[:200])])
        for unit in units:
            unit.location_id = target.id
        db.session.flush()
        serial_history.log_rows([{"unit_id": u.id, "kind": "transferred", "status": u.status,
                                  "location_id": target.id, "reference": f"{note[:180]} from {origin.code}"}
                                 for u in units])
        stock.check_low_stock([product], before, levels)
        if target.pickable:  # units arriving where orders may take them: waiting backorders first
            stock.allocate_backorders(product)
        return transfer_view(row, product.sku, origin.code, target.code)


def _serial_units(product: Product, origin: Location, serials: list[str], quantity: int | None) -> list[SerialUnit]:
    """The serial units to move, locked (5. serial units): each known, on the shelf, at ``origin``."""
    if not product.track_serials:
        raise ValidationFailed(f"{product.sku} does not track serials: give a quantity",
                               errors={"serials": ["this product does not track serials"]})
    if not serials:
        raise ValidationFailed(f"{product.sku} is serial-tracked: give the serials of the units to move",
                               errors={"serials": ["required for a serial-tracked product"]})
    if quantity is not None and quantity != len(serials):
        raise ValidationFailed(f"quantity {quantity} but {len(serials)} serials",
                               errors={"quantity": [f"must equal the number of serials ({len(serials)})"]})
    dupes = sorted(s for s, n in Counter(serials).items() if n > 1)
    if dupes:
        raise ValidationFailed("serials repeat", errors={"serials": [f"repeated: {', '.join(dupes)}"]})
    units = {u.serial: u for u in db.session.execute(
        select(SerialUnit).where(SerialUnit.product_id == product.id, SerialUnit.serial.in_(serials))
        .order_by(SerialUnit.id).with_for_update().execution_options(populate_existing=True)).scalars()}
    unknown = [s for s in serials if s not in units]
    if unknown:
        raise ValidationFailed(f"unknown serials of {product.sku}: {', '.join(unknown)}",
                               errors={"serials": [f"unknown: {', '.join(unknown)}"]}, code="unknown_serial")
    busy = [f"{s} is {units[s].status}" for s in serials if units[s].status not in TRANSFERABLE_SERIALS]
    if busy:
        raise Conflict(f"only units on the shelf move: {'; '.join(busy)}", errors={"serials": busy},
                       code="serial_not_in_stock")
    elsewhere = [s for s in serials if units[s].location_id != origin.id]
    if elsewhere:
        codes = dict(db.session.execute(select(Location.id, Location.code).where(
            Location.id.in_({units[s].location_id for s in elsewhere}))).all())
        where = [f"{s} is at {codes[units[s].location_id]}" for s in elsewhere]
        raise Conflict(f"not at {origin.code}: {'; '.join(where)}", errors={"serials": where},
                       code="serial_elsewhere")
    return [units[s] for s in serials]


def transfer_view(row: StockTransfer, sku: str, source: str, destination: str) -> dict:
    return {"id": row.id, "sku": sku, "from": source, "to": destination, "quantity": row.quantity,
            "serials": list(row.serials or []), "reference": row.reference, "created_at": row.created_at.isoformat()}


# ---------------------------------------------------------------- the pick list


@dataclass
class Stop:
    """Where the picker goes: one location and one product, with the reservations it serves."""

    location: str
    kind: str
    sku: str
    name: str
    barcode: str | None
    quantity: int
    picked: int = 0
    reservation_ids: list[int] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"location": self.location, "kind": self.kind, "sku": self.sku, "name": self.name,
                "barcode": self.barcode, "quantity": self.quantity, "picked": self.picked,
                "to_pick": self.quantity - self.picked, "serials": self.serials}


def pick_list(order_id: int) -> dict:
    """The order's open reservations as stops in walk order (location path, then sku).

    A line's ``picked_quantity`` is not kept per location: it is counted against the line's stops in
    walk order, so the first stops read picked first. Each stop keeps its reservation ids."""
    order = order_service.get_order(order_id)
    rows = db.session.execute(
        select(Reservation, Location.code, Location.kind, Product.sku, Product.name, Product.barcode)
        .join(Location, Location.id == Reservation.location_id).join(Product, Product.id == Reservation.product_id)
        .where(Reservation.order_id == order.id, Reservation.status == "open")
        .order_by(Location.code, Product.sku, Reservation.id)).all()
    stops: dict[tuple[str, str], Stop] = {}
    by_line: dict[int, list[tuple[Stop, int]]] = {}
    for res, code, kind, sku, name, barcode in rows:
        stop = stops.setdefault((code, sku), Stop(code, kind, sku, name, barcode, 0))
        stop.quantity += res.quantity
        stop.reservation_ids.append(res.id)
        by_line.setdefault(res.line_id, []).append((stop, res.quantity))
    lines = {line.id: line for line in db.session.execute(
        select(OrderLine).where(OrderLine.id.in_(list(by_line)))).scalars()} if by_line else {}
    for line_id, parts in by_line.items():
        left = lines[line_id].picked_quantity
        for stop, units in parts:
            counted = min(left, units)
            stop.picked += counted
            left -= counted
    held: dict[int | None, list[str]] = {}  # the keys are the reservation ids asked for: never None
    reservation_ids = [r for stop in stops.values() for r in stop.reservation_ids]
    if reservation_ids:  # serial units still held for these reservations (picked ones are the line's serials)
        for reservation_id, serial in db.session.execute(select(SerialUnit.reservation_id, SerialUnit.serial).where(
                SerialUnit.reservation_id.in_(reservation_ids), SerialUnit.status == "reserved")
                .order_by(SerialUnit.id)).all():
            held.setdefault(reservation_id, []).append(serial)
    for stop in stops.values():
        stop.serials = [serial for r in stop.reservation_ids for serial in held.get(r, [])]
    ordered = sorted(stops.values(), key=lambda s: (s.location, s.sku))
    return {"order_id": order.id, "number": order.number, "status": order.status, "flags": order.flags,
            "vip": "vip" in order.flags, "gift": bool(order.gift), "stops": ordered,
            "units": sum(s.quantity for s in ordered), "to_pick": sum(s.quantity - s.picked for s in ordered)}
