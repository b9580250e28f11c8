"""Stage 2 and the first half of stage 4: picking and packing with scans.

A scan is a serial number (serial-tracked products), or a barcode or sku (one
scan per unit otherwise). Every scan of a call is checked before anything is
written: one scan that does not belong to the order rejects the whole call
(422, per-scan messages) and changes nothing.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from engine.db import db, transaction
from engine.domain import transitions as tx
from engine.errors import Conflict, ValidationFailed
from engine.models import Order, Product, SerialUnit
from engine.services import orders as order_service


def _products(order: Order) -> dict[int, Product]:
    ids = {line.product_id for line in order.lines}
    return {p.id: p for p in db.session.execute(select(Product).where(Product.id.in_(ids))).scalars()}


def _unit_line(order: Order, products: dict[int, Product], scan: str, wanted) -> object | None:
    """The first line of an untracked product this scan (barcode or sku) names that still wants units."""
    for line in order.lines:
        product = products[line.product_id]
        if not product.track_serials and scan in (product.sku, product.barcode) and wanted(line) > 0:
            return line
    return None


def pick_order(order_id: int, scans: list[str]) -> Order:
    """Scan units into the order: ``paid``/``picking`` -> ``picking``, or ``picked`` once every unit is in."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        tx.check(order.status, "pick", order.held_from, order.fulfilment)
        if any(line.backordered for line in order.lines):
            raise Conflict("the order has backordered lines; it cannot be picked yet", code="backordered")
        products = _products(order)
        tracked = {pid for pid, p in products.items() if p.track_serials}
        units = {}
        if tracked:
            units = {(u.product_id, u.serial): u for u in db.session.execute(select(SerialUnit).where(
                SerialUnit.product_id.in_(tracked), SerialUnit.serial.in_(set(scans))).with_for_update()).scalars()}
        taken: Counter = Counter()
        assignments: list[tuple[object, SerialUnit | None]] = []
        errors: dict[str, list[str]] = {}

        def still_wanted(line):
            return line.quantity - line.picked_quantity - taken[line.id]

        for index, scan in enumerate(scans):
            unit = next((u for (pid, serial), u in units.items() if serial == scan), None)
            if unit is not None:
                line = next((ln for ln in order.lines if ln.product_id == unit.product_id and still_wanted(ln) > 0), None)
                if line is None:
                    errors[str(index)] = [f"{scan}: no unit of this product is still to pick"]
                elif unit.status != "in_stock" or any(u is unit for _, u in assignments):
                    errors[str(index)] = [f"{scan}: serial is not in stock (status {unit.status})"]
                else:
                    taken[line.id] += 1
                    assignments.append((line, unit))
                continue
            line = _unit_line(order, products, scan, still_wanted)
            if line is None:
                known = any(scan in (p.sku, p.barcode) for p in products.values() if not p.track_serials)
                errors[str(index)] = [f"{scan}: all units of this product are already scanned" if known
                                      else f"{scan}: does not belong to order {order.number}"]
                continue
            taken[line.id] += 1
            assignments.append((line, None))
        if errors:
            raise ValidationFailed("some scans do not belong to the order; nothing was recorded",
                                   errors={"scans": errors})
        if not scans:
            raise ValidationFailed("scan at least one unit", errors={"scans": ["scan at least one unit"]})
        for line, unit in assignments:
            line.picked_quantity += 1
            if unit is not None:
                unit.status, unit.line_id = "picked", line.id
                line.serials = [*line.serials, unit.serial]
        complete = all(line.picked_quantity == line.quantity for line in order.lines)
        order_service.move(order, "pick", tx.PICKED if complete else tx.PICKING)
        picked = sum(line.picked_quantity for line in order.lines)
        wanted = sum(line.quantity for line in order.lines)
        if complete:
            order_service.stage(order, "order_picked", f"picked: all {wanted} units scanned")
        else:
            order_service.note(order, "picking", f"{picked} of {wanted} units scanned", scans=scans)
    return order


def pack_order(order_id: int, scans: list[str]) -> Order:
    """Verify every picked unit again: the scans must match the picked units exactly."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        tx.check(order.status, "pack", order.held_from, order.fulfilment)
        products = _products(order)
        expected_serials = {serial: line for line in order.lines for serial in line.serials}
        seen_serials: set[str] = set()
        counted: Counter = Counter()
        errors: dict[str, list[str]] = {}
        for index, scan in enumerate(scans):
            if scan in expected_serials:
                if scan in seen_serials:
                    errors[str(index)] = [f"{scan}: scanned twice"]
                seen_serials.add(scan)
                continue
            line = _unit_line(order, products, scan, lambda ln: ln.picked_quantity - counted[ln.id])
            if line is None:
                known = any(scan in (p.sku, p.barcode) for p in products.values() if not p.track_serials)
                errors[str(index)] = [f"{scan}: more units than were picked" if known
                                      else f"{scan}: was not picked for order {order.number}"]
                continue
            counted[line.id] += 1
        missing = [s for s in expected_serials if s not in seen_serials]
        missing += [f"{line.sku} x{line.picked_quantity - counted[line.id]}" for line in order.lines
                    if not products[line.product_id].track_serials and counted[line.id] < line.picked_quantity]
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
