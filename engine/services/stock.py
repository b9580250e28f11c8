"""Stock: locations, receipts, returned units put back, totals; reservations, releases, shipments out of
stock and backorder allocation are in ``engine.services.allocation`` (re-exported here).

Every change of on-hand stock writes a row in the movement ledger; on-hand is
the ledger's sum. Rows are locked (PostgreSQL ``FOR UPDATE``, SQLite: the
transaction is ``BEGIN IMMEDIATE``) before they are changed, in id order so two
orders never deadlock.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from engine.db import db, insert_if_absent, transaction, utcnow
from engine.domain import locations as location_rules
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import (
    Location,
    Order,
    Product,
    PurchaseOrder,
    ReorderRule,
    StockLevel,
    StockMovement,
)
from engine.models.stock import DEFAULT_LOCATION
from engine.services import purchasing, reorder
from engine.services import serials as serial_units
from engine.services.allocation import (
    Allocation,
    allocate,
    allocate_backorders,
    allocation_order,
    available_by_product,
    lock_levels,
    open_reservations,
    release,
    reserve,
    ship_out,
    unpick,
)

# placement's allocation and the reservations, kept importable from here
__all__ = ["Allocation", "allocate", "allocate_backorders", "allocation_order", "available_by_product", "check_low_stock",
           "default_location", "draft_purchase_order", "get_product", "get_stock", "location_id", "lock_levels",
           "open_reservations", "quarantine_location", "receive_locked", "receive_stock", "release", "reserve",
           "restock", "ship_out", "stock_summary", "unpick"]


def default_location() -> Location:
    """``MAIN``, the default warehouse: it always exists (made on first use)."""
    return _get_or_create_location(DEFAULT_LOCATION, "Main warehouse")


def _location(code: str | None, field: str = "location") -> Location:
    """The location a receipt or a return names, created on first use as v1 promised: a well-formed path
    whose parent exists becomes a warehouse (one segment) or a bin. A transfer never creates one
    (``locations.find``)."""
    if not code or code == DEFAULT_LOCATION:
        return default_location()
    location = db.session.execute(select(Location).where(Location.code == code)).scalar_one_or_none()
    if location is not None:
        return location
    problems = location_rules.path_errors(code)
    if problems:
        raise ValidationFailed(f"unknown location {code!r}: {problems[0]}", errors={field: problems},
                               code="invalid_location")
    parent_code = location_rules.parent_path(code)
    parent = None
    if parent_code is not None:
        parent = db.session.execute(select(Location).where(Location.code == parent_code)).scalar_one_or_none()
        if parent is None and parent_code != DEFAULT_LOCATION:
            raise ValidationFailed(f"unknown location {code!r}: {parent_code!r} does not exist (create it with "
                                   "POST /locations first)", errors={field: [f"unknown location {parent_code!r}"]},
                                   code="unknown_location")
        parent = parent or default_location()
    return _get_or_create_location(code, code, parent)


def quarantine_location(code: str) -> Location:
    """The quarantine location damaged returns go to (``RETURNS_QUARANTINE_LOCATION``): made on first use
    as a ``quarantine`` location, never pickable, inside the warehouse its path names. A location of that
    code that orders could take stock from is refused: units put there would be sold again."""
    location = db.session.execute(select(Location).where(Location.code == code)).scalar_one_or_none()
    if location is None:
        parent_code = location_rules.parent_path(code)
        if location_rules.path_errors(code) or parent_code is None:
            raise ValidationFailed(f"RETURNS_QUARANTINE_LOCATION is {code!r}: it must be a location inside a "
                                   f"warehouse, such as MAIN/QUARANTINE", errors={"location": [code]},
                                   code="invalid_location")
        parent = _location(parent_code)
        insert_if_absent(Location, {"code": code, "name": "Quarantine", "kind": "quarantine", "parent_id": parent.id,
                                    "pickable": False, "created_at": utcnow()}, ["code"])
        location = db.session.execute(select(Location).where(Location.code == code)).scalar_one()
    if location.pickable:
        raise Conflict(f"the quarantine location {code} is pickable, so orders would take the damaged units: "
                       f"make it non-pickable (PATCH /locations/{code} with pickable: false) or set "
                       f"RETURNS_QUARANTINE_LOCATION to another location", code="quarantine_pickable")
    return location


def _get_or_create_location(code: str, name: str, parent: Location | None = None) -> Location:
    stmt = select(Location).where(Location.code == code)
    location = db.session.execute(stmt).scalar_one_or_none()
    if location is None:
        insert_if_absent(Location, {"code": code, "name": name, "kind": "bin" if parent else "warehouse",
                                    "parent_id": parent.id if parent else None,
                                    "pickable": parent.pickable if parent else True,
                                    "created_at": utcnow()}, ["code"])
        location = db.session.execute(stmt).scalar_one()
    return location


def _level(product: Product, location: Location, levels: list[StockLevel] | None = None) -> StockLevel:
    for level in levels if levels is not None else lock_levels([product.id]):
        if level.product_id == product.id and level.location_id == location.id:  # levels: maybe other products' too
            return level
    # a new level takes the product's reorder flag from its rules: the caller holds the product row, as
    # put_rules does, so a rule is either committed before this insert or made after it (and flags it)
    flagged = select(exists().where(ReorderRule.product_id == product.id,
                                           ReorderRule.location_id.is_not(None))).scalar_subquery()
    insert_if_absent(StockLevel, {"product_id": product.id, "location_id": location.id, "on_hand": 0, "reserved": 0,
                                  "has_location_rules": flagged}, ["product_id", "location_id"])
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
                  reference: str | None = None, unit_cost: int | None = None, *, generate: bool = False,
                  serial_pattern: str | None = None) -> dict:
    """Add ``quantity`` units to stock (one ledger row), register serials, fill backorders.

    ``generate`` (or a ``serial_pattern``): a serial-tracked product's serials are made from the pattern
    and the product's counter instead of being given (the response lists them)."""
    serials = list(serials or [])
    generate = generate or serial_pattern is not None
    with transaction():
        # the product's row first (PATCH /products switches track_serials and archives under it), then its
        # levels before checking serials: two receipts of one serial are one decision
        product = get_product(sku, lock=True)
        _check_receivable(product, quantity)
        levels = lock_levels([product.id])
        if generate and (serials or not product.track_serials):
            why = "give serials or generate them, not both" if serials else f"{sku} does not track serials"
            raise ValidationFailed(why, errors={"generate": [why]})
        if generate:
            if quantity > GENERATED_MAX:
                raise ValidationFailed(f"generate at most {GENERATED_MAX} serials per receipt",
                                       errors={"quantity": [f"at most {GENERATED_MAX} with generate"]})
            serials = serial_units.generate_serials(product, quantity, serial_pattern)
        receive_locked(product, quantity, location, serials, reference, unit_cost, levels=levels)
        summary = stock_summary(product)
        summary["generated"] = {"count": len(serials), "first": serials[0], "last": serials[-1],
                                "serials": serials if len(serials) <= GENERATED_LISTED else None} if generate else None
        return summary


GENERATED_MAX = 100_000
GENERATED_LISTED = 1000  # a receipt's response lists up to this many generated serials (else count, first, last)


def _check_receivable(product: Product, quantity: int) -> None:
    if product.archived_at is not None:
        raise ValidationFailed(f"{product.sku} is archived: it receives no stock until it is brought back "
                               f"(PATCH /products/{product.sku} with archived: false)",
                               errors={"sku": [f"{product.sku} is archived"]}, code="product_archived")
    if quantity <= 0:
        raise ValidationFailed("quantity must be positive", errors={"quantity": ["must be at least 1"]})


def receive_locked(product: Product, quantity: int, location: str | None = None, serials: list[str] | None = None,
                   reference: str | None = None, unit_cost: int | None = None, *,
                   levels: list[StockLevel]) -> None:
    """The core of a receipt, shared by ``POST /stock/receipts`` and purchase-order receiving: the caller
    holds the product's row lock and its ``levels`` (engine lock order). One ``receipt`` movement, the
    serials registered (bulk inserts with their history), backorders filled (oldest order first), then the
    product's reorder rules that the receipt lifted above their point are reset (they may fire again on
    the next crossing)."""
    sku = product.sku
    serials = list(serials or [])
    _check_receivable(product, quantity)
    if product.track_serials:
        if len(serials) != quantity:
            raise ValidationFailed(
                f"{sku} is serial-tracked: give exactly one serial per unit ({quantity})",
                errors={"serials": [f"expected {quantity} serials, got {len(serials)}"]})
        dupes = [s for s, n in Counter(serials).items() if n > 1]
        if dupes:
            raise ValidationFailed("serials repeat", errors={"serials": [f"repeated: {', '.join(dupes)}"]})
        known = serial_units.known_serials(product.id, serials)
        if known:
            if len(known) > 20:
                known = [*known[:20], f"... ({len(known)} in all)"]
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
    if unit_cost is not None:
        product.unit_cost = unit_cost
    try:
        db.session.flush()
        serial_units.insert_units(product.id, loc.id, serials, reference)
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


def location_id(code: str | None) -> int:
    """The id of the location with ``code`` (created on first use, like a receipt's)."""
    return _location(code).id


def restock(order: Order, product: Product, quantity: int, location: str | None, serials: list[str],
            reference: str, *, fill_backorders: bool = True) -> None:
    """Put returned units back on hand (a ``return`` movement); ``fill_backorders`` False for units that
    must not be sold (a quarantine location): they wait there for staff."""
    loc = _location(location)
    level = _level(product, loc)
    level.on_hand += quantity
    db.session.add(StockMovement(product_id=product.id, location_id=loc.id, quantity=quantity, kind="return",
                                 order_id=order.id, reference=reference))
    db.session.flush()
    # the returned units in stock before backorders are filled, so a tracked product's backorders reserve
    # them: an exception to "serial rows last" that cannot deadlock, since only the return's own flows
    # (which hold its order's lock first) touch units that are on their way back
    serial_units.restock_units(order.id, product.id, loc.id, serials, reference)
    if fill_backorders:
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
