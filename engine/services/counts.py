"""Cycle counts of a location: open (snapshot), scan (repeatable), review, post as adjustments, or cancel.

Stock that moves during a count: opening records each product's on-hand at the location and the highest
ledger id (``ledger_mark``). The review shows the snapshot, the movements since (ledger ids above the
mark, at the location) and what is expected now: the snapshot plus those movements, which is the level's
on-hand at that moment (on_hand == ledger). Posting compares the counted units with on-hand at posting
time, so a pick shipped or a receipt put away during the count is not a difference; staff who counted a
bin before such a movement rescan it (the review lists the movements) before posting.

Locks, in the engine-wide order: product rows -> stock levels -> orders (the backorders posted units
fill) -> the stock count row -> serial units. Scans lock only the count row (they change nothing else).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, insert, select

from engine.db import db, transaction, utcnow
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import (
    Location,
    Product,
    SerialUnit,
    StockCount,
    StockCountLine,
    StockCountSerial,
    StockLevel,
    StockMovement,
)
from engine.services import adjustments, stock

# action -> the status it leads to, per status (the transition-table pattern of orders)
TRANSITIONS = {"open": {"scan": "open", "post": "posted", "cancel": "cancelled"}, "posted": {}, "cancelled": {}}
MOVEMENTS_SHOWN = 200


def check(count: StockCount, action: str) -> str:
    allowed = TRANSITIONS[count.status]
    if action not in allowed:
        raise Conflict(f"cannot {action} count {count.id}: it is {count.status}"
                       + ("; open a new count for the location" if count.status != "open" else ""),
                       errors={"status": [count.status], "allowed_actions": sorted(allowed)},
                       code="illegal_transition")
    return allowed[action]


def _get(count_id: int, lock: bool = False) -> StockCount:
    stmt = select(StockCount).where(StockCount.id == count_id)
    if lock:
        stmt = stmt.with_for_update(of=StockCount).execution_options(populate_existing=True)
    count = db.session.execute(stmt).scalar_one_or_none()
    if count is None:
        raise NotFound(f"no stock count {count_id}")
    return count


def _lock_products(ids) -> list[Product]:
    """Lock product rows in id order (FOR NO KEY UPDATE, as catalog.lock_product)."""
    if not ids:
        return []
    return list(db.session.execute(select(Product).where(Product.id.in_(sorted(set(ids)))).order_by(Product.id)
                                   .with_for_update(key_share=True).execution_options(populate_existing=True))
                .scalars())


def open_count(location: str, staff: str, skus: list[str] | None = None, note: str | None = None) -> dict:
    """Open a count of ``location`` (all its products, or ``skus``) and snapshot what it should hold."""
    if not (staff or "").strip():
        raise ValidationFailed("name the staff member opening the count (staff)", errors={"staff": ["required"]})
    with transaction():
        loc = stock.default_location() if location == stock.DEFAULT_LOCATION else db.session.execute(
            select(Location).where(Location.code == location)).scalar_one_or_none()
        if loc is None:
            raise ValidationFailed(f"unknown location {location!r}", errors={"location": [f"unknown: {location!r}"]})
        if skus:
            found = dict(db.session.execute(select(Product.sku, Product.id).where(Product.sku.in_(skus))).all())
            unknown = [s for s in skus if s not in found]
            if unknown:
                raise ValidationFailed(f"unknown skus: {', '.join(unknown)}",
                                       errors={"skus": [f"unknown: {', '.join(unknown)}"]})
            ids = list(found.values())
        else:
            ids = list(db.session.execute(select(StockLevel.product_id).where(StockLevel.location_id == loc.id))
                       .scalars())
        products = _lock_products(ids)  # lock order: products -> levels -> the count
        levels = {lv.product_id: lv for lv in stock.lock_levels(ids) if lv.location_id == loc.id}
        busy = db.session.execute(select(StockCount.id).where(StockCount.location_id == loc.id,
                                                              StockCount.status == "open")).scalar()
        if busy:
            raise Conflict(f"count {busy} of {location} is open: post or cancel it first",
                           errors={"location": [f"count {busy} is open"]}, code="count_open")
        mark = db.session.execute(select(func.max(StockMovement.id))).scalar() or 0
        count = StockCount(location_id=loc.id, status="open", ledger_mark=mark, opened_by=staff.strip(),
                           whole_location=not skus, note=note)
        db.session.add(count)
        db.session.flush()
        if products:
            db.session.execute(insert(StockCountLine), [
                {"count_id": count.id, "product_id": p.id, "counted": 0,
                 "expected": levels[p.id].on_hand if p.id in levels else 0} for p in products])
        tracked = [p.id for p in products if p.track_serials]
        if tracked:
            rows = db.session.execute(select(SerialUnit.product_id, SerialUnit.serial).where(
                SerialUnit.product_id.in_(tracked), SerialUnit.location_id == loc.id,
                SerialUnit.status.in_(adjustments.ON_HAND_STATUSES))).all()
            if rows:
                db.session.execute(insert(StockCountSerial), [
                    {"count_id": count.id, "product_id": pid, "serial": serial, "expected": True, "counted": False}
                    for pid, serial in rows])
        return review(count.id)


def _resolve(count: StockCount, scans: list[str], lines: dict[int, StockCountLine]):
    """Each scan as (product, serial or None); errors per scan index. Nothing is written here."""
    units: dict[str, list[SerialUnit]] = {}
    for unit in db.session.execute(select(SerialUnit).where(SerialUnit.serial.in_(set(scans)))).scalars():
        units.setdefault(unit.serial, []).append(unit)
    codes = set(scans) - set(units)
    products = {}
    if codes:
        for product in db.session.execute(select(Product).where(
                (Product.sku.in_(codes)) | (Product.barcode.in_(codes)))).scalars():
            products[product.sku] = product
            if product.barcode:
                products[product.barcode] = product
    counted = set(db.session.execute(select(StockCountSerial.product_id, StockCountSerial.serial).where(
        StockCountSerial.count_id == count.id, StockCountSerial.counted.is_(True))).all())
    seen: set = set()
    resolved: list[tuple[Product, str | None]] = []
    errors: dict[str, list[str]] = {}
    for index, scan in enumerate(scans):
        if scan in units:
            if len(units[scan]) > 1:
                errors[str(index)] = [f"{scan}: serial of several products; count it with its sku"]
                continue
            unit = units[scan][0]
            key = (unit.product_id, scan)
            if key in counted or key in seen:
                errors[str(index)] = [f"{scan}: already counted in count {count.id}"]
                continue
            seen.add(key)
            resolved.append((db.session.get_one(Product, unit.product_id), scan))
        elif scan in products:
            product = products[scan]
            if product.track_serials:
                errors[str(index)] = [f"{scan}: {product.sku} is serial-tracked: scan each unit's serial"]
                continue
            resolved.append((product, None))
        else:
            errors[str(index)] = [f"{scan}: not a serial, barcode or sku this shop knows"]
            continue
        if not count.whole_location and resolved[-1][0].id not in lines:
            resolved.pop()
            errors[str(index)] = [f"{scan}: not part of count {count.id} (it counts only its skus)"]
    return resolved, errors


def submit(count_id: int, scans: list[str] | None = None, lines: list[dict] | None = None) -> dict:
    """Add scans (each a unit: serial, barcode or sku) or set counted quantities (lines); nothing on any error."""
    scans, lines = list(scans or []), list(lines or [])
    if not scans and not lines:
        raise ValidationFailed("send scans or lines", errors={"scans": ["scan at least one unit, or send lines"]})
    with transaction():
        count = _get(count_id, lock=True)  # the count row only: scans change nothing else
        check(count, "scan")
        by_product = {ln.product_id: ln for ln in db.session.execute(
            select(StockCountLine).where(StockCountLine.count_id == count.id)).scalars()}
        resolved, errors = _resolve(count, scans, by_product)
        settings, line_errors = _line_settings(count, lines, by_product)
        if errors or line_errors:
            raise ValidationFailed(f"some entries cannot be counted in count {count.id}; nothing was recorded",
                                   errors={**({"scans": errors} if errors else {}),
                                           **({"lines": line_errors} if line_errors else {})})
        for product, serial in resolved:
            line = by_product.get(product.id)
            if line is None:  # found at a location counted whole: it joins the count, expected 0
                line = by_product[product.id] = StockCountLine(count_id=count.id, product_id=product.id,
                                                               expected=0, counted=0)
                db.session.add(line)
            line.counted += 1
            if serial is not None:
                _mark_serial(count, product.id, serial)
        for product, quantity in settings:
            line = by_product.get(product.id)
            if line is None:
                line = by_product[product.id] = StockCountLine(count_id=count.id, product_id=product.id, expected=0)
                db.session.add(line)
            line.counted = quantity
        db.session.flush()
        return review(count.id)


def _line_settings(count: StockCount, lines: list[dict], by_product: dict):
    skus = [entry["sku"] for entry in lines]
    products = {p.sku: p for p in db.session.execute(select(Product).where(Product.sku.in_(skus))).scalars()}
    settings, errors, repeated = [], {}, Counter(skus)
    for index, entry in enumerate(lines):
        product, repeats = products.get(entry["sku"]), repeated[entry["sku"]]
        if product is None:
            errors[str(index)] = {"sku": [f"unknown sku {entry['sku']!r}"]}
        elif repeats > 1:
            errors[str(index)] = {"sku": [f"{entry['sku']} appears {repeats} times: send it once"]}
        elif product.track_serials:
            errors[str(index)] = {"sku": [f"{product.sku} is serial-tracked: scan its units' serials"]}
        elif not count.whole_location and product.id not in by_product:
            errors[str(index)] = {"sku": [f"not part of count {count.id}"]}
        else:
            settings.append((product, entry["counted"]))
    return settings, errors


def _mark_serial(count: StockCount, product_id: int, serial: str) -> None:
    row = db.session.execute(select(StockCountSerial).where(
        StockCountSerial.count_id == count.id, StockCountSerial.product_id == product_id,
        StockCountSerial.serial == serial)).scalar_one_or_none()
    if row is None:
        db.session.add(StockCountSerial(count_id=count.id, product_id=product_id, serial=serial, expected=False,
                                        counted=True))
    else:
        row.counted = True


def review(count_id: int) -> dict:
    """Expected (at open, and now) vs counted per product, missing and unexpected serials, movements since open."""
    count = _get(count_id)
    lines = list(db.session.execute(select(StockCountLine).where(StockCountLine.count_id == count.id)
                                    .order_by(StockCountLine.product_id)).scalars())
    ids = [ln.product_id for ln in lines]
    on_hand = dict(db.session.execute(select(StockLevel.product_id, StockLevel.on_hand).where(
        StockLevel.location_id == count.location_id, StockLevel.product_id.in_(ids))).all()) if ids else {}
    moves = db.session.execute(select(StockMovement).where(
        StockMovement.location_id == count.location_id, StockMovement.product_id.in_(ids),
        StockMovement.id > count.ledger_mark).order_by(StockMovement.id)).scalars().all() if ids else []
    moved: Counter[int] = Counter()
    for move in moves:
        moved[move.product_id] += move.quantity
    serials: dict[int, dict[str, list[str]]] = {}
    for row in db.session.execute(select(StockCountSerial).where(StockCountSerial.count_id == count.id)
                                  .order_by(StockCountSerial.serial)).scalars():
        kinds = serials.setdefault(row.product_id, {"missing": [], "unexpected": [], "counted": []})
        if row.counted:
            kinds["counted"].append(row.serial)
        if row.expected and not row.counted:
            kinds["missing"].append(row.serial)
        if row.counted and not row.expected:
            kinds["unexpected"].append(row.serial)
    skus = {ln.product_id: ln.product.sku for ln in lines}
    out_lines = []
    for line in lines:
        now = line.expected + moved[line.product_id]
        entry: dict[str, object] = {
                 "sku": line.product.sku, "expected_at_open": line.expected, "moved_since_open": moved[line.product_id],
                 "expected": now, "on_hand": on_hand.get(line.product_id, 0), "counted": line.counted,
                 "difference": line.counted - now, "posted_difference": line.posted_difference}
        if line.product.track_serials:
            entry.update({k: v for k, v in serials.get(line.product_id, {}).items() if k != "counted"})
            entry.setdefault("missing", [])
            entry.setdefault("unexpected", [])
        out_lines.append(entry)
    return {"id": count.id, "location": count.location.code, "status": count.status,
            "whole_location": count.whole_location, "opened_by": count.opened_by,
            "opened_at": count.opened_at.isoformat(), "closed_by": count.closed_by,
            "closed_at": count.closed_at.isoformat() if count.closed_at else None, "note": count.note,
            "allowed_actions": sorted(a for a in TRANSITIONS[count.status] if a != "scan"),
            "lines": out_lines, "differences": sum(1 for e in out_lines if e["difference"]),
            "movements_since_open": [
                {"id": m.id, "sku": skus[m.product_id], "quantity": m.quantity, "kind": m.kind,
                 "reference": m.reference, "created_at": m.created_at.isoformat()} for m in moves[-MOVEMENTS_SHOWN:]]}


def post_count(count_id: int, staff: str) -> dict:
    """Post every difference as a count_correction adjustment (one transaction): counted becomes on hand."""
    if not (staff or "").strip():
        raise ValidationFailed("name the staff member posting the count (staff)", errors={"staff": ["required"]})
    with transaction():
        count = _get(count_id)
        check(count, "post")
        ids = list(db.session.execute(select(StockCountLine.product_id).where(StockCountLine.count_id == count.id))
                   .scalars())
        products = {p.id: p for p in _lock_products(ids)}  # lock order: products
        levels = stock.lock_levels(ids)  # -> levels
        adjustments.lock_backorders(ids)  # -> orders (posted units fill backorders)
        count = _get(count_id, lock=True)  # -> the count row
        check(count, "post")
        lines = list(db.session.execute(select(StockCountLine).where(StockCountLine.count_id == count.id)
                                        .order_by(StockCountLine.product_id)).scalars())
        if {ln.product_id for ln in lines} - set(products):
            raise Conflict(f"count {count.id} was scanned while it was being posted: post it again",
                           code="count_changed")
        before = stock.available_by_product(levels)
        added = []
        for line in lines:
            product = products[line.product_id]
            changes = _serial_changes(count, product) if product.track_serials else _unit_change(count, line, levels)
            net = 0
            for quantity, serials in changes:  # -> serial units (locked in adjustments.apply)
                own = [lv for lv in levels if lv.product_id == product.id]
                adjustments.apply(adjustments.Adjustment(
                    product, count.location.code, quantity, "count_correction", staff, f"count {count.id}",
                    serials or None, reference=f"count {count.id}"), own)
                net += quantity
                if not _has_level(levels, product.id, count.location_id):  # apply made the level
                    levels = stock.lock_levels(ids)
            line.posted_difference = net
            if net > 0:
                added.append(product)
        count.status = check(count, "post")
        count.closed_by, count.closed_at = staff.strip(), utcnow()
        db.session.flush()
        adjustments.finish(list(products.values()), before, stock.lock_levels(ids), added)
        return review(count.id)


def _has_level(levels, product_id: int, location_id: int) -> bool:
    return any(lv.product_id == product_id and lv.location_id == location_id for lv in levels)


def _unit_change(count: StockCount, line: StockCountLine, levels) -> list[tuple[int, list]]:
    on_hand = next((lv.on_hand for lv in levels if lv.product_id == line.product_id
                    and lv.location_id == count.location_id), 0)
    return [(line.counted - on_hand, [])] if line.counted != on_hand else []


def _serial_changes(count: StockCount, product: Product) -> list[tuple[int, list]]:
    """Units counted but not on hand here come back; units on hand here now but not counted go (scrapped)."""
    here = set(db.session.execute(select(SerialUnit.serial).where(
        SerialUnit.product_id == product.id, SerialUnit.location_id == count.location_id,
        SerialUnit.status.in_(adjustments.ON_HAND_STATUSES))).scalars())
    counted = set(db.session.execute(select(StockCountSerial.serial).where(
        StockCountSerial.count_id == count.id, StockCountSerial.product_id == product.id,
        StockCountSerial.counted.is_(True))).scalars())
    gone, found = sorted(here - counted), sorted(counted - here)
    # found first: only the net change may not take on hand below reserved
    return [*([(len(found), found)] if found else []), *([(-len(gone), gone)] if gone else [])]


def cancel_count(count_id: int, staff: str) -> dict:
    """Close the count without changing stock."""
    if not (staff or "").strip():
        raise ValidationFailed("name the staff member cancelling the count (staff)", errors={"staff": ["required"]})
    with transaction():
        count = _get(count_id, lock=True)
        count.status = check(count, "cancel")
        count.closed_by, count.closed_at = staff.strip(), utcnow()
        db.session.flush()
        return review(count.id)
