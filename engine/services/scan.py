"""Scan anything: what a scanned code is — a serial, a product (sku or barcode), a location, an order, a
purchase order (``PO-000123``, case-insensitive).

``RESOLVERS`` is an ordered list of small functions, each returning the matches of its kind (a list of
dicts with at least ``kind``, ``summary`` and ``url``); a new kind (purchase orders) is one function and one
line in the list. Every resolver runs: an ambiguous code answers all its matches, in the list's order.
"""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import or_, select

from engine.db import db
from engine.domain.barcodes import gtin_forms
from engine.errors import NotFound
from engine.models import Location, Order, Product, PurchaseOrder, SerialUnit
from engine.models.orders import ORDER_NUMBER_OFFSET

API = "/api/v1"


def serials(code: str) -> list[dict]:
    rows = db.session.execute(select(SerialUnit, Product.sku, Location.code)
                              .join(Product, Product.id == SerialUnit.product_id)
                              .join(Location, Location.id == SerialUnit.location_id)
                              .where(SerialUnit.serial == code).order_by(SerialUnit.id).limit(20)).all()
    return [{"kind": "serial", "id": unit.id, "serial": unit.serial, "sku": sku, "status": unit.status,
             "location": location, "summary": f"unit {unit.serial} of {sku}: {unit.status} at {location}",
             "url": f"{API}/serials/{quote(unit.serial, safe='/')}?sku={quote(sku, safe='')}"}
            for unit, sku, location in rows]


def products(code: str) -> list[dict]:
    rows = db.session.execute(select(Product).where(or_(Product.sku == code, Product.barcode.in_(gtin_forms(code))))
                              .order_by(Product.id).limit(20)).scalars()
    return [{"kind": "product", "id": p.id, "sku": p.sku, "barcode": p.barcode,
             "summary": f"product {p.sku}: {p.name}" + (" (archived)" if p.archived_at else "")
             + (f", matched by barcode {p.barcode}" if p.sku != code else ""),
             "url": f"{API}/products/{quote(p.sku, safe='')}"} for p in rows]


def locations(code: str) -> list[dict]:
    rows = db.session.execute(select(Location).where(Location.code == code)).scalars()
    return [{"kind": "location", "id": loc.id, "location": loc.code, "summary": f"location {loc.code}: {loc.name}",
             "url": f"{API}/locations/{quote(loc.code, safe='/')}"} for loc in rows]


def orders(code: str) -> list[dict]:
    if not code.isdigit() or len(code) > 18 or int(code) <= ORDER_NUMBER_OFFSET:
        return []
    order = db.session.get(Order, int(code) - ORDER_NUMBER_OFFSET)
    if order is None:
        return []
    return [{"kind": "order", "id": order.id, "number": order.number, "status": order.status,
             "summary": f"order {order.number}: {order.status}, {order.customer_name}",
             "url": f"{API}/orders/{order.id}"}]


def purchase_orders(code: str) -> list[dict]:
    if not code.upper().startswith("PO-"):
        return []
    po = db.session.execute(select(PurchaseOrder).where(PurchaseOrder.number == code.upper())).scalar_one_or_none()
    if po is None:
        return []
    supplier = po.supplier.name if po.supplier is not None else "no supplier"
    return [{"kind": "purchase_order", "id": po.id, "number": po.number, "status": po.status,
             "summary": f"purchase order {po.number} ({supplier}): {po.status}",
             "url": f"{API}/purchase-orders/{po.id}"}]


RESOLVERS = [serials, products, locations, orders, purchase_orders]


def resolve(code: str) -> list[dict]:
    """Every match of ``code`` (each with ``code``); empty when nothing knows it."""
    return [{"code": code, **match} for resolver in RESOLVERS for match in resolver(code)]


def scan(code: str) -> dict:
    matches = resolve(code)
    if not matches:
        raise NotFound(f"{code!r} is not a serial, product sku or barcode, location or order number this shop "
                       "knows", code="unknown_code")
    return {"code": code, "ambiguous": len(matches) > 1, "matches": matches, **matches[0]}
