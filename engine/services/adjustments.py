"""Stock adjustments: count corrections, damage, loss and found units, each one ``adjustment`` movement.

An adjustment says why (``reason``) and who (``staff``: recorded as given, required; API keys are not
people and warehouse staff often have no login of their own). It never takes on-hand stock below what
is reserved (409 naming what is available). Serial-tracked products name their units: damage, loss and
a negative count correction scrap them; ``found`` brings a scrapped unit back or registers a new one.

Locks, in the engine-wide order: the product row, its stock levels, the orders waiting for it (when
units are added: the backorders they will fill), then the serial units named.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from engine.db import db, transaction
from engine.errors import Conflict, ValidationFailed
from engine.models import Location, Order, OrderLine, Product, SerialUnit, StockLevel, StockMovement
from engine.models.stock import ADJUSTMENT_REASONS
from engine.services import serials, stock

# the serial statuses a level's on_hand counts (agreed engine-wide), and those an adjustment may take away
ON_HAND_STATUSES = ("in_stock", "reserved", "picked", "quarantined")
REMOVABLE_STATUSES = ("in_stock", "quarantined")
ADDS = {"found": 1, "damage": -1, "loss": -1}  # count_correction: either way


@dataclass
class Adjustment:
    """What one adjustment does; ``serials`` are the units it adds or removes."""

    product: Product
    location: str | None
    quantity: int | None
    reason: str
    staff: str
    note: str | None = None
    serials: list[str] | None = None
    reference: str | None = None


def adjust_stock(sku: str, *, reason: str, staff: str, quantity: int | None = None,
                 serials: list[str] | None = None, location: str | None = None, note: str | None = None) -> dict:
    """Record one adjustment (one transaction): the movement, its serials, then low stock and backorders."""
    with transaction():
        product = stock.get_product(sku, lock=True)  # lock order: product row
        levels = stock.lock_levels([product.id])  # -> its levels
        before = stock.available_by_product(levels)
        adjustment = Adjustment(product, location, quantity, reason, staff, note, serials)
        movement, units = apply(adjustment, levels)
        finish([product], before, stock.lock_levels([product.id]), [product] if movement.quantity > 0 else [])
        return describe(movement, units, stock.stock_summary(product))


def apply(adj: Adjustment, levels: list[StockLevel]) -> tuple[StockMovement, list[SerialUnit]]:
    """Check and write one adjustment of a product whose row and levels the caller has locked."""
    staff = (adj.staff or "").strip()
    if adj.reason not in ADJUSTMENT_REASONS:
        raise ValidationFailed(f"reason must be one of {', '.join(ADJUSTMENT_REASONS)}",
                               errors={"reason": [f"one of {', '.join(ADJUSTMENT_REASONS)}"]})
    if not staff:
        raise ValidationFailed("name the staff member making the adjustment (staff)",
                               errors={"staff": ["required"]})
    if adj.product.track_serials:
        quantity, units, new = _tracked(adj)
    else:
        quantity, units, new = _untracked(adj), [], []
    location = _location_for(adj.location, adding=quantity > 0)
    level = stock._level(adj.product, location, levels)
    if quantity < 0 and level.on_hand + quantity < level.reserved:
        available = level.on_hand - level.reserved
        raise Conflict(f"only {available} of {adj.product.sku} available at {location.code} (on hand {level.on_hand}, "
                       f"reserved {level.reserved}): cannot take {-quantity}; release or ship the orders holding "
                       "it first", errors={"quantity": [f"at most {available} can be taken away"]},
                       code="below_reserved")
    if quantity < 0:
        wrong = [u.serial for u in units if u.location_id != location.id]
        if wrong:
            raise Conflict(f"serials not at {location.code}: {', '.join(wrong)}; adjust them where they are",
                           errors={"serials": [f"not at {location.code}: {', '.join(wrong)}"]},
                           code="serial_elsewhere")
    level.on_hand += quantity
    movement = StockMovement(product_id=adj.product.id, location_id=location.id, quantity=quantity, kind="adjustment",
                             reason=adj.reason, staff=staff, note=adj.note, reference=adj.reference)
    db.session.add(movement)
    for unit in units:
        unit.status, unit.location_id, unit.line_id = ("scrapped" if quantity < 0 else "in_stock"), location.id, None
    created = [SerialUnit(product_id=adj.product.id, location_id=location.id, serial=s, status="in_stock")
               for s in new]
    db.session.add_all(created)
    db.session.flush()
    reference = f"adjustment {movement.id} ({adj.reason}, {staff})"
    serials.log_rows([{"unit_id": u.id, "kind": "scrapped" if quantity < 0 else "adjusted",
                       "status": u.status, "location_id": location.id, "reference": reference}
                      for u in [*units, *created]])
    return movement, [*units, *created]


def finish(products: list[Product], before: dict[int, int], levels: list[StockLevel], added: list[Product]) -> None:
    """After adjustments: stock_low for products that fell to their reorder point, backorders for added units."""
    stock.check_low_stock(products, before, levels)
    for product in added:
        stock.allocate_backorders(product)


def lock_backorders(product_ids) -> None:
    """Lock the lines waiting for these products before any serial (orders come before serials)."""
    if product_ids:
        db.session.execute(select(OrderLine.id).join(Order).where(
            OrderLine.product_id.in_(sorted(set(product_ids))), OrderLine.backordered > 0,
            Order.status.in_(("placed", "paid", "on_hold"))).order_by(OrderLine.order_id, OrderLine.id)
            .with_for_update()).all()


def _untracked(adj: Adjustment) -> int:
    if adj.serials:
        raise ValidationFailed(f"{adj.product.sku} does not track serials: give a quantity",
                               errors={"serials": ["this product does not track serials"]})
    if not adj.quantity:
        raise ValidationFailed("give a signed quantity other than 0 (negative takes units away)",
                               errors={"quantity": ["a signed integer other than 0"]})
    _check_sign(adj.reason, adj.quantity)
    return adj.quantity


def _check_sign(reason: str, quantity: int) -> None:
    sign = ADDS.get(reason)
    if sign is not None and quantity * sign < 0:
        word = "adds units: the quantity must be positive" if sign > 0 else "takes units away: the quantity " \
                                                                            "must be negative"
        raise ValidationFailed(f"{reason} {word}", errors={"quantity": [f"{reason} {word}"]})


def _tracked(adj: Adjustment) -> tuple[int, list[SerialUnit], list[str]]:
    """The signed quantity, the known units and the new serials of a serial-tracked product's adjustment."""
    serials = list(adj.serials or [])
    sku = adj.product.sku
    if not serials:
        raise ValidationFailed(f"{sku} is serial-tracked: name the units (serials)",
                               errors={"serials": ["name one serial per unit"]})
    dupes = sorted(s for s, n in Counter(serials).items() if n > 1)
    if dupes:
        raise ValidationFailed("serials repeat", errors={"serials": [f"repeated: {', '.join(dupes)}"]})
    if adj.quantity is not None and abs(adj.quantity) != len(serials):
        raise ValidationFailed(f"quantity {adj.quantity} does not match the {len(serials)} serials",
                               errors={"quantity": [f"+{len(serials)} or -{len(serials)}, or leave it out"]})
    if ADDS.get(adj.reason, 1) > 0:  # units may be added: the orders they will fill come before the serials
        lock_backorders([adj.product.id])
    # lock order: serials last (the caller holds the product and its levels)
    units = {u.serial: u for u in db.session.execute(select(SerialUnit).where(
        SerialUnit.product_id == adj.product.id, SerialUnit.serial.in_(serials)).order_by(SerialUnit.id)
        .with_for_update().execution_options(populate_existing=True)).scalars()}
    on_hand = [s for s in serials if s in units and units[s].status in ON_HAND_STATUSES]
    sign = ADDS.get(adj.reason) or (adj.quantity and (1 if adj.quantity > 0 else -1)) \
        or (-1 if on_hand else 1)
    if adj.quantity is not None:
        _check_sign(adj.reason, adj.quantity)
    if sign < 0:
        return -len(serials), _removable(sku, serials, units), []
    if on_hand:
        where = ", ".join(f"{s} ({units[s].status})" for s in on_hand)
        raise Conflict(f"serials already on hand: {where}; move them with a transfer, or count them",
                       errors={"serials": [f"already on hand: {', '.join(on_hand)}"]}, code="serial_on_hand")
    gone = [s for s in serials if s in units and units[s].status != "scrapped"]
    if gone:
        where = ", ".join(f"{s} ({units[s].status})" for s in gone)
        raise Conflict(f"serials that left the shop cannot be found again: {where}; receive them through a return",
                       errors={"serials": [f"not scrapped: {', '.join(gone)}"]}, code="serial_not_scrapped")
    return len(serials), [units[s] for s in serials if s in units], [s for s in serials if s not in units]


def _removable(sku: str, serials: list[str], units: dict[str, SerialUnit]) -> list[SerialUnit]:
    unknown = [s for s in serials if s not in units]
    if unknown:
        raise ValidationFailed(f"unknown serials of {sku}: {', '.join(unknown)}",
                               errors={"serials": [f"unknown: {', '.join(unknown)}"]})
    held = [s for s in serials if units[s].status not in REMOVABLE_STATUSES]
    if held:
        where = ", ".join(f"{s} ({units[s].status})" for s in held)
        raise Conflict(f"serials that are not in stock cannot be adjusted away: {where}; unpick or cancel "
                       "their order first", errors={"serials": [f"not in stock: {', '.join(held)}"]},
                       code="serial_not_in_stock")
    return [units[s] for s in serials]


def _location_for(code: str | None, adding: bool) -> Location:
    """Units found may be put anywhere (a new location is created, as receipts do); units taken must exist."""
    if adding or not code or code == stock.DEFAULT_LOCATION:
        return stock._location(code)
    found = db.session.execute(select(Location).where(Location.code == code)).scalar_one_or_none()
    if found is None:
        raise ValidationFailed(f"unknown location {code!r}", errors={"location": [f"unknown location {code!r}"]})
    return found


def describe(movement: StockMovement, units: list[SerialUnit], summary: dict) -> dict:
    location = db.session.get_one(Location, movement.location_id)
    return {"id": movement.id, "sku": summary["sku"], "location": location.code, "quantity": movement.quantity,
            "reason": movement.reason, "staff": movement.staff, "note": movement.note,
            "reference": movement.reference, "serials": sorted(u.serial for u in units),
            "created_at": movement.created_at.isoformat(), "stock": summary}
