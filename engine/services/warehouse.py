"""Stage 2 and the first half of stage 4: picking and packing with scans.

A scan is a serial number (serial-tracked products), or a barcode or sku (one
scan per unit otherwise). Every scan of a call is checked before anything is
written: one scan that does not belong to the order rejects the whole call
(422, per-scan messages) and changes nothing. ``errors.scans.<index>`` is a list of
two strings: the sentence (starting with the scan) and the error code (wrong_product,
serial_picked, reserved_for_other_order, wrong_location, over_scan, unknown_code, ...;
docs/design-decisions.md, "Serial numbers, labels and scanning").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import select

from engine.db import db, transaction
from engine.domain import transitions as tx
from engine.errors import Conflict, ValidationFailed
from engine.models import Location, Order, OrderLine, Product, SerialUnit
from engine.models.orders import ORDER_NUMBER_OFFSET
from engine.services import orders as order_service
from engine.services import scan as scan_service
from engine.services import serials as serial_units
from engine.services import stock


def _products(order: Order) -> dict[int, Product]:
    ids = {line.product_id for line in order.lines}
    return {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(ids))).scalars()}


def _unit_line(order: Order, products: dict[int, Product], scan: str,
               wanted: Callable[[OrderLine], int]) -> OrderLine | None:
    """The first line of an untracked product this scan (barcode or sku) names that still wants units."""
    for line in order.lines:
        product = products[line.product_id]
        if not product.track_serials and scan in (product.sku, product.barcode) and wanted(line) > 0:
            return line
    return None


def scan_error(scan: str, code: str, message: str) -> list[str]:
    """A scan's entry under ``errors.scans.<index>``: the sentence (naming the scan), then the error code."""
    return [f"{scan}: {message}", code]


def _where(location_id: int | None) -> str:
    location = db.session.get(Location, location_id) if location_id is not None else None
    return location.code if location is not None else "an unknown location"


def _order_of_line(line_id: int | None) -> str:
    number = db.session.execute(select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
                                .where(OrderLine.id == line_id)).scalar_one_or_none() if line_id else None
    return f"order {ORDER_NUMBER_OFFSET + number}" if number is not None else "an order"


def unit_problem(scan: str, unit: SerialUnit, order: Order) -> list[str]:
    """Why a unit in this status cannot be scanned into ``order`` (statuses other than in_stock/own reserved)."""
    sku = db.session.get_one(Product, unit.product_id).sku
    own = {line.id for line in order.lines}
    if unit.status == "picked":
        whose = f"this order ({order.number})" if unit.line_id in own else _order_of_line(unit.line_id)
        return scan_error(scan, "serial_picked", f"already picked for {whose}")
    if unit.status == "reserved":
        return scan_error(scan, "reserved_for_other_order", f"reserved for {_order_of_line(unit.line_id)}; "
                          f"scan a unit of {sku} reserved for order {order.number} or a free one")
    if unit.status == "shipped":
        return scan_error(scan, "serial_shipped", f"already shipped ({_order_of_line(unit.line_id)})")
    if unit.status == "returned":
        return scan_error(scan, "serial_returned", "on a customer return, not back in stock yet")
    if unit.status == "quarantined":
        return scan_error(scan, "serial_quarantined", f"quarantined at {_where(unit.location_id)}: not sellable")
    if unit.status == "scrapped":
        return scan_error(scan, "serial_scrapped", "scrapped (written off)")
    return scan_error(scan, "serial_unavailable", f"not available (status {unit.status})")


def foreign_scan(scan: str, order: Order, products: dict[int, Product], verb: str = "ordered") -> list[str]:
    """The error for a scan that matched nothing of the order: what it is instead (scan anything)."""
    on_order = {p.sku for p in products.values()}
    for match in scan_service.resolve(scan):
        kind = match["kind"]
        if kind == "product" and match["sku"] in on_order:
            product = next(p for p in products.values() if p.sku == match["sku"])
            if product.track_serials:
                return scan_error(scan, "serial_required", f"{product.sku} is serial-tracked: scan the unit's serial")
            return scan_error(scan, "over_scan", f"more units of {product.sku} than were {verb}")
        if kind in ("product", "serial") and match["sku"] not in on_order:
            what = f"a unit of {match['sku']}" if kind == "serial" else f"product {match['sku']}"
            return scan_error(scan, "wrong_product", f"{what}, which is not on order {order.number}")
        if kind != "serial":
            return scan_error(scan, "not_a_unit", f"this is a {kind} ({match['summary']}), not a unit to pick")
    return scan_error(scan, "unknown_code", f"unknown code: not a serial, sku or barcode of this shop "
                      f"(it does not belong to order {order.number})")


class _Pick:
    """One pick call's decision: which scanned unit goes to which line. Nothing is written until every
    scan passed; then ``apply`` writes the lines, the units and their events."""

    def __init__(self, order: Order, products: dict[int, Product], scans: list[str]):
        self.order, self.products, self.scanned = order, products, set(scans)
        self.lines = {line.id: line for line in order.lines}
        self.taken: Counter = Counter()
        self.assignments: list[tuple] = []  # (line, unit or None, reservation id, unit swapped out or None)
        self.errors: dict[str, list[str]] = {}
        self.used: set[int] = set()
        self.victims: set[int] = set()
        tracked = {pid for pid, p in products.items() if p.track_serials}
        self.units: dict[str, SerialUnit] = {}
        self.reserved: list[SerialUnit] = []
        self.reservations = []
        if tracked:  # serial rows: last in the engine's lock order
            locked = select(SerialUnit).with_for_update().execution_options(populate_existing=True)
            self.units = {u.serial: u for u in db.session.execute(locked.where(
                SerialUnit.product_id.in_(tracked), SerialUnit.serial.in_(self.scanned))).scalars()}
            self.reserved = list(db.session.execute(locked.where(
                SerialUnit.line_id.in_([ln.id for ln in order.lines if ln.product_id in tracked]),
                SerialUnit.status == "reserved").order_by(SerialUnit.id.desc())).scalars())
            self.reservations = [r for r in stock.open_reservations(order) if r.product_id in tracked]

    def wanted(self, line) -> int:
        return line.quantity - line.picked_quantity - self.taken[line.id]

    def take(self, line, unit=None, reservation_id=None, victim=None) -> None:
        """Assign one scan to ``line``."""
        self.taken[line.id] += 1
        self.assignments.append((line, unit, reservation_id, victim))
        if unit is not None:
            self.used.add(unit.id)
        if victim is not None:
            self.victims.add(victim.id)

    def serial(self, scan: str, unit: SerialUnit) -> list[str] | None:
        """Take a scanned unit, or say why not."""
        sku = self.products[unit.product_id].sku
        if unit.id in self.used:
            return scan_error(scan, "scanned_twice", "scanned twice in this call")
        if unit.status == "reserved" and unit.line_id in self.lines:
            line = self.lines[unit.line_id]
            if self.wanted(line) <= 0:
                return scan_error(scan, "over_scan", f"more units of {sku} than ordered ({line.quantity})")
            self.take(line, unit, unit.reservation_id)
            return None
        if unit.status != "in_stock":
            return unit_problem(scan, unit, self.order)
        lines = [ln for ln in self.order.lines if ln.product_id == unit.product_id and self.wanted(ln) > 0]
        if not lines:
            return scan_error(scan, "over_scan", f"more units of {sku} than ordered")
        for line in lines:
            held = next((r for r in self.reservations if r.line_id == line.id and r.location_id == unit.location_id),
                        None)
            if held is None:
                continue
            # a free unit instead of a reserved one: it takes the place of one of the line's reserved units
            victim = next((u for u in self.reserved if u.line_id == line.id and u.location_id == unit.location_id
                           and u.serial not in self.scanned and u.id not in self.victims), None)
            self.take(line, unit, victim.reservation_id if victim else held.id, victim)
            return None
        wanted_at = sorted({_where(r.location_id) for r in self.reservations if r.line_id in {ln.id for ln in lines}})
        return scan_error(scan, "wrong_location", f"this unit is at {_where(unit.location_id)}; the pick list sends "
                          f"you to {', '.join(wanted_at) or 'no location'} for {sku} of order {self.order.number}")

    def apply(self) -> None:
        events = []
        for line, unit, reservation_id, victim in self.assignments:
            line.picked_quantity += 1
            if unit is None:
                continue
            if victim is not None:
                victim.status, victim.line_id, victim.reservation_id = "in_stock", None, None
                events.append({"unit_id": victim.id, "kind": "released", "status": "in_stock",
                               "order_id": self.order.id, "location_id": victim.location_id,
                               "reference": f"order {self.order.number}: {unit.serial} was picked instead"})
            unit.status, unit.line_id, unit.reservation_id = "picked", line.id, reservation_id
            line.serials = [*line.serials, unit.serial]
            events.append({"unit_id": unit.id, "kind": "picked", "status": "picked", "order_id": self.order.id,
                           "location_id": unit.location_id, "reference": f"order {self.order.number}"})
        serial_units.log_rows(events)


def pick_order(order_id: int, scans: list[str]) -> Order:
    """Scan units into the order: ``paid``/``picking`` -> ``picking``, or ``picked`` once every unit is in.

    Serial-tracked lines: a unit reserved for the line is picked; a free unit of the product at the
    reservation's location is picked in place of one of the line's reserved units (which goes back in
    stock). Locks: the tracked products' stock levels first (a swap changes which units are free, and
    reservations of a product are serialized by its levels), then the order, then the serial rows."""
    with transaction():
        tracked_ids = db.session.execute(select(OrderLine.product_id).join(
            Product, Product.id == OrderLine.product_id).where(OrderLine.order_id == order_id,
                                                               Product.track_serials).distinct()).scalars().all()
        stock.lock_levels(tracked_ids)
        order = order_service.get_order(order_id, lock=True)
        tx.check(order.status, "pick", order.held_from, order.fulfilment)
        if any(line.backordered for line in order.lines):
            raise Conflict("the order has backordered lines; it cannot be picked yet", code="backordered")
        products = _products(order)
        pick = _Pick(order, products, scans)
        for index, scan in enumerate(scans):
            unit = pick.units.get(scan)
            if unit is not None:
                problem = pick.serial(scan, unit)
            else:
                line = _unit_line(order, products, scan, pick.wanted)
                if line is None:
                    problem = foreign_scan(scan, order, products)
                else:
                    pick.take(line)
                    problem = None
            if problem:
                pick.errors[str(index)] = problem
        if pick.errors:
            raise ValidationFailed("some scans do not belong to the order; nothing was recorded",
                                   errors={"scans": pick.errors})
        if not scans:
            raise ValidationFailed("scan at least one unit", errors={"scans": ["scan at least one unit"]})
        pick.apply()
        complete = all(line.picked_quantity == line.quantity for line in order.lines)
        order_service.move(order, "pick", tx.PICKED if complete else tx.PICKING)
        picked = sum(line.picked_quantity for line in order.lines)
        wanted = sum(line.quantity for line in order.lines)
        if complete:
            order_service.stage(order, "order_picked", f"picked: all {wanted} units scanned")
        else:
            order_service.note(order, "picking", f"{picked} of {wanted} units scanned", scans=scans)
    return order


def _pack_problem(scan: str, order: Order, products: dict[int, Product]) -> list[str]:
    tracked = [pid for pid, p in products.items() if p.track_serials]
    unit = db.session.execute(select(SerialUnit).where(SerialUnit.product_id.in_(tracked), SerialUnit.serial == scan)
                              ).scalars().first() if tracked else None
    if unit is None:
        return foreign_scan(scan, order, products, verb="picked")
    if unit.status in ("in_stock", "reserved") and unit.line_id in {ln.id for ln in order.lines} | {None}:
        return scan_error(scan, "not_picked", f"was not picked for order {order.number}: pick it first")
    if unit.status == "in_stock":
        return scan_error(scan, "not_picked", f"was not picked for order {order.number}")
    return unit_problem(scan, unit, order)


def _pack_verdict(order: Order, scans: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """How ``scans`` compare with the units picked for ``order``: the per-scan errors (by index) and what is
    still missing (serials, ``SKU xN``). Reads only."""
    products = _products(order)
    expected_serials = {serial: line for line in order.lines for serial in line.serials}
    seen_serials: set[str] = set()
    counted: Counter = Counter()
    errors: dict[str, list[str]] = {}
    for index, scan in enumerate(scans):
        if scan in expected_serials:
            if scan in seen_serials:
                errors[str(index)] = scan_error(scan, "scanned_twice", "scanned twice")
            seen_serials.add(scan)
            continue
        line = _unit_line(order, products, scan, lambda ln: ln.picked_quantity - counted[ln.id])
        if line is None:
            errors[str(index)] = _pack_problem(scan, order, products)
            continue
        counted[line.id] += 1
    missing = [s for s in expected_serials if s not in seen_serials]
    missing += [f"{line.sku} x{line.picked_quantity - counted[line.id]}" for line in order.lines
                if not products[line.product_id].track_serials and counted[line.id] < line.picked_quantity]
    return errors, missing


def check_pack(order_id: int, scans: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The pack verification of ``pack_order`` without packing (a screen verifying scan by scan): the
    per-scan errors by index and the units still missing. An order that cannot be packed now is a 409."""
    order = order_service.get_order(order_id)
    tx.check(order.status, "pack", order.held_from, order.fulfilment)
    return _pack_verdict(order, scans)


def pack_order(order_id: int, scans: list[str]) -> Order:
    """Verify every picked unit again: the scans must match the picked units exactly."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        tx.check(order.status, "pack", order.held_from, order.fulfilment)
        errors, missing = _pack_verdict(order, scans)
        if errors or missing:
            field_errors: dict = {}
            if errors:
                field_errors["scans"] = errors
            if missing:
                field_errors["missing"] = missing
            raise ValidationFailed("the scans do not match the picked units; nothing was recorded",
                                   errors=field_errors)
        order_service.move(order, "pack")
        order_service.stage(order, "order_packed", f"packed: {len(scans)} units verified")
    return order
