"""Products."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from engine.db import db, transaction
from engine.domain import money
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Product

FIELDS = ("sku", "name", "price", "currency", "barcode", "track_serials", "allow_backorder", "reorder_point",
          "reorder_quantity", "weight_grams", "unit_cost")


def create_product(data: dict) -> Product:
    """Create a product; a duplicate sku (or barcode) is a 409."""
    with transaction():
        clauses = [Product.sku == data["sku"]]
        if data.get("barcode"):
            clauses.append(Product.barcode == data["barcode"])
        clash = db.session.execute(select(Product).where(or_(*clauses))).scalars().first()
        if clash is not None:
            what = "sku" if clash.sku == data["sku"] else "barcode"
            raise Conflict(f"a product with this {what} exists: {clash.sku}", errors={what: ["already exists"]},
                           code=f"duplicate_{what}")
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
    product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"no product with sku {sku!r}")
    return product
