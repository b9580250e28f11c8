"""Products: create, list and search, change, archive."""

from __future__ import annotations

from sqlalchemy import String, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from engine.db import db, page_by_id, transaction, utcnow
from engine.domain import money
from engine.domain.barcodes import barcode_problem
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Order, OrderLine, Product, SerialUnit, StockLevel
from engine.models.orders import ORDER_NUMBER_OFFSET

FIELDS = ("sku", "name", "price", "currency", "barcode", "track_serials", "allow_backorder", "reorder_point",
          "reorder_quantity", "weight_grams", "unit_cost")
# what PATCH /products/{sku} may change (sku and currency are the product's identity and its prices' unit)
CHANGEABLE = ("name", "price", "barcode", "track_serials", "allow_backorder", "reorder_point", "reorder_quantity",
              "weight_grams", "unit_cost", "archived")
SEARCH_MAX_LENGTH = 100
OPEN_STATUSES = ("placed", "paid", "on_hold")  # an order whose backordered units still wait for a receipt


class casefold(GenericFunction):  # noqa: N801 - an SQL function's name
    """Unicode lower case in SQL: PostgreSQL's ``lower`` (UTF-8 aware); on SQLite, whose ``lower`` only
    knows ASCII, Python's ``str.lower`` registered on every connection as ``hookshop_lower``."""

    type = String()
    inherit_cache = True


@compiles(casefold)
def _casefold_default(element, compiler, **kw):
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(casefold, "sqlite")
def _casefold_sqlite(element, compiler, **kw):
    return f"hookshop_lower({compiler.process(element.clauses, **kw)})"


def _check_barcode(barcode: str | None) -> None:
    problem = barcode_problem(barcode) if barcode is not None else None
    if problem:
        raise ValidationFailed(f"barcode {barcode!r} is not valid: {problem}", errors={"barcode": [problem]},
                               code="invalid_barcode")


def _duplicate_barcode(clash: Product) -> Conflict:
    return Conflict(f"a product with this barcode exists: {clash.sku}", errors={"barcode": ["already exists"]},
                    code="duplicate_barcode")


def create_product(data: dict) -> Product:
    """Create a product; a duplicate sku (or barcode) is a 409, a GTIN with a wrong check digit a 422."""
    _check_barcode(data.get("barcode"))
    with transaction():
        clauses = [Product.sku == data["sku"]]
        if data.get("barcode"):
            clauses.append(Product.barcode == data["barcode"])
        clash = db.session.execute(select(Product).where(or_(*clauses))).scalars().first()
        if clash is not None:
            if clash.sku != data["sku"]:
                raise _duplicate_barcode(clash)
            raise Conflict(f"a product with this sku exists: {clash.sku}", errors={"sku": ["already exists"]},
                           code="duplicate_sku")
        try:
            currency = money.currency_code(data.get("currency"))
        except money.UnknownCurrency as exc:
            raise ValidationFailed(f"currency: {exc}", errors={"currency": [str(exc)]}) from None
        product = Product(**{k: data[k] for k in FIELDS if k in data and data[k] is not None})
        product.currency = currency
        product.track_serials = bool(product.track_serials)
        product.allow_backorder = bool(product.allow_backorder)
        product.reorder_point = product.reorder_point or 0
        product.reorder_quantity = product.reorder_quantity or 0
        product.weight_grams = product.weight_grams or 0
        db.session.add(product)
        try:
            db.session.flush()
        except IntegrityError:  # created a moment ago by a concurrent request
            raise Conflict(f"a product with this sku or barcode exists: {data['sku']}",
                           errors={"sku": ["already exists"]}, code="duplicate_sku") from None
    return product


def get_product(sku: str) -> Product:
    """The product (archived ones too: their history stays readable)."""
    product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    return product


def list_products(*, q: str | None = None, archived: bool = False, limit: int = 50,
                  cursor: int | None = None) -> tuple[list[Product], int | None]:
    """Newest first, live products (or, with ``archived``, the archived ones); ``q`` is a case-insensitive
    substring of the sku, the name or the barcode. One statement per page, however large the catalog."""
    stmt = select(Product).where(Product.archived_at.is_not(None) if archived else Product.archived_at.is_(None))
    if q:
        needle = q[:SEARCH_MAX_LENGTH].lower()
        stmt = stmt.where(or_(*(casefold(column).contains(needle, autoescape=True)
                                for column in (Product.sku, Product.name, Product.barcode))))
    return page_by_id(stmt.order_by(Product.id.desc()), Product.id, limit, cursor)


def update_product(sku: str, changes: dict) -> Product:
    """Change a product's fields, or archive it (``archived``), in one transaction under its row lock.

    Existing orders keep what they were placed with (their lines hold the unit price and name).
    ``track_serials`` can only be switched while the product has no stock and no serial units, and a
    product cannot be archived while open orders wait for backordered units of it: 409s saying why."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValidationFailed("these fields cannot be changed", errors={f: ["cannot be changed"] for f in unknown})
    if "barcode" in changes:
        _check_barcode(changes["barcode"])
    with transaction():
        product = lock_product(sku)
        if changes.get("barcode") is not None and changes["barcode"] != product.barcode:
            clash = db.session.execute(select(Product).where(Product.barcode == changes["barcode"])).scalar_one_or_none()
            if clash is not None:
                raise _duplicate_barcode(clash)
        if "track_serials" in changes and changes["track_serials"] != product.track_serials:
            _check_serials_switch(product, changes["track_serials"])
        if changes.get("archived") and not product.archived:
            _check_archivable(product)
        for field in CHANGEABLE:
            if field in changes and field != "archived":
                setattr(product, field, changes[field])
        if "archived" in changes:
            if not changes["archived"]:
                product.archived_at = None
            elif product.archived_at is None:  # archiving again keeps the first date
                product.archived_at = utcnow()
        try:
            db.session.flush()
        except IntegrityError:  # the barcode was given to another product a moment ago
            raise Conflict("a product with this barcode exists", errors={"barcode": ["already exists"]},
                           code="duplicate_barcode") from None
    return product


def lock_product(sku: str) -> Product:
    """The product, its row locked: first in the engine's lock order.

    PostgreSQL ``FOR NO KEY UPDATE``: it excludes another PATCH or a receipt, but not the foreign-key
    checks (``FOR KEY SHARE``) of a placement or a cancel inserting rows that point at the product
    while they hold stock levels — ``FOR UPDATE`` would deadlock with them."""
    product = db.session.execute(select(Product).where(Product.sku == sku).with_for_update(key_share=True)
                                 .execution_options(populate_existing=True)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    return product


def _check_serials_switch(product: Product, track: bool) -> None:
    """Units on hand or reserved, and serial units (in stock or gone: their history is the product's), were
    all counted one way; switching the other way under them would leave units no rule fits."""
    on_hand, reserved = db.session.execute(
        select(func.coalesce(func.sum(StockLevel.on_hand), 0), func.coalesce(func.sum(StockLevel.reserved), 0))
        .where(StockLevel.product_id == product.id)).one()
    serials = db.session.execute(select(func.count()).select_from(SerialUnit)
                                 .where(SerialUnit.product_id == product.id)).scalar_one()
    if on_hand or reserved or serials:
        what = "start" if track else "stop"
        raise Conflict(f"cannot {what} tracking serials of {product.sku}: it has {on_hand} units on hand, "
                       f"{reserved} reserved and {serials} serial units; track_serials can only be switched "
                       "before the first receipt (or once all its stock is gone and it never had serials)",
                       errors={"track_serials": [f"{on_hand} on hand, {reserved} reserved, {serials} serial units"]},
                       code="product_has_stock")


def _check_archivable(product: Product) -> None:
    """An archived product receives no stock: orders still waiting for units of it would wait for ever."""
    waiting = [str(ORDER_NUMBER_OFFSET + order_id) for order_id in db.session.execute(  # their order numbers
        select(Order.id).join(OrderLine, OrderLine.order_id == Order.id)
        .where(OrderLine.product_id == product.id, OrderLine.backordered > 0, Order.status.in_(OPEN_STATUSES))
        .distinct().order_by(Order.id).limit(20)).scalars()]
    if waiting:
        raise Conflict(f"cannot archive {product.sku}: orders wait for backordered units of it "
                       f"({', '.join(waiting)}); receive the stock or cancel them first",
                       errors={"archived": [f"orders waiting: {', '.join(waiting)}"]}, code="product_backordered")

