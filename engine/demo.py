"""``hookshop demo``: a small shop with orders in every stage, built through the services."""

from __future__ import annotations

from contextlib import nullcontext

from sqlalchemy import select

from engine.db import db
from engine.models import ApiKey, Product

DEMO_API_KEY = "hs_demo_key_do_not_use_in_production"
# the demo's staff users, one per admin role, all with this password (never in production)
DEMO_PASSWORD = "hookshop-demo"
DEMO_STAFF = {"owner@demo.example": "owner", "accounting@demo.example": "accounting",
              "warehouse@demo.example": "warehouse", "service@demo.example": "customer_service"}
DEMO_LOGIN = f"admin at /admin/: log in as owner@demo.example (or accounting@, warehouse@, service@demo.example), " \
             f"password {DEMO_PASSWORD}"

PRODUCTS = [
    {"sku": "TSHIRT-BLK-M", "name": "T-shirt black M", "price": 1990, "currency": "EUR", "barcode": "4006381333931",
     "weight_grams": 200, "reorder_point": 5, "reorder_quantity": 50},
    {"sku": "MUG-LOGO", "name": "Mug with logo", "price": 1290, "currency": "EUR", "barcode": "4006381333948",
     "weight_grams": 350},
    {"sku": "HEADPHONES-X1", "name": "Headphones X1", "price": 14900, "currency": "EUR", "track_serials": True,
     "weight_grams": 400},
    {"sku": "PHONE-P7", "name": "Phone P7", "price": 59900, "currency": "EUR", "track_serials": True,
     "weight_grams": 300},
    {"sku": "POSTER-A2", "name": "Poster A2 (made to order)", "price": 2490, "currency": "EUR",
     "allow_backorder": True, "weight_grams": 150},
]
CUSTOMERS = [
    ("ann@example.com", "Ann Example", "+49 30 1234567", {"line1": "Sample Street 12", "city": "Berlin",
                                                          "postal_code": "10115", "country": "DE"}),
    ("bob@example.com", "Bob Builder", None, {"line1": "1 Main Road", "city": "Leeds", "postal_code": "LS1 4AP",
                                              "country": "GB"}),
    ("chloe@example.fr", "Chloé Martin", "+33 1 23 45 67 89", {"line1": "3 rue de la Paix", "city": "Paris",
                                                               "postal_code": "75002", "country": "FR"}),
]
# the stage each demo order is walked to
STAGES = ["placed", "paid", "picking", "picked", "confirmed", "packed", "shipped", "completed", "on_hold",
          "cancelled", "completed"]


def load_demo(progress=None) -> str:
    """Load the demo shop once; a second call changes nothing."""
    if db.session.execute(select(Product).where(Product.sku == PRODUCTS[0]["sku"])).scalar_one_or_none():
        return "demo data already loaded; demo API key: " + DEMO_API_KEY + "; " + DEMO_LOGIN
    _load_catalog()
    _load_access()
    items = list(enumerate(STAGES))
    with progress(items, "demo orders") if progress else nullcontext(items) as bar:
        for index, target in bar:
            _demo_order(index, target)
    return (f"demo shop loaded: {len(PRODUCTS)} products, {len(STAGES)} orders; demo API key: {DEMO_API_KEY}; "
            f"{DEMO_LOGIN}")


def _load_catalog() -> None:
    """The products and their opening stock (serials for the tracked ones, a second location)."""
    from engine.services import catalog, stock

    for data in PRODUCTS:
        catalog.create_product(data)
    stock.receive_stock("TSHIRT-BLK-M", 40, reference="demo opening stock", unit_cost=700)
    stock.receive_stock("MUG-LOGO", 25, reference="demo opening stock", unit_cost=400)
    stock.receive_stock("HEADPHONES-X1", 12, serials=[f"HPX1-{n:05d}" for n in range(1, 13)], unit_cost=6000)
    stock.receive_stock("PHONE-P7", 6, serials=[f"P7-{n:06d}" for n in range(1, 7)], unit_cost=31000)
    stock.receive_stock("TSHIRT-BLK-M", 10, location="STORE", reference="shop floor")


def _load_access() -> None:
    """The demo API key and the demo staff users (each made once)."""
    from engine.models import StaffUser
    from engine.services import auth, staff

    if db.session.execute(select(ApiKey).where(ApiKey.name == "demo")).scalar_one_or_none() is None:
        auth.create_api_key("demo", ["read", "write", "admin"], key=DEMO_API_KEY)
    for email, role in DEMO_STAFF.items():
        if db.session.execute(select(StaffUser.id).where(StaffUser.email == email)).first() is None:
            staff.create_user(email, role, DEMO_PASSWORD)


def _demo_order(index: int, target: str) -> None:
    """Place the ``index``-th demo order and take it through the stages up to ``target``."""
    from engine.services import orders, payments, placement, shipping, warehouse

    email, name, phone, address = CUSTOMERS[index % len(CUSTOMERS)]
    lines = [{"sku": "TSHIRT-BLK-M", "quantity": 1 + index % 2}]
    if index % 3 == 0:
        lines.append({"sku": "HEADPHONES-X1", "quantity": 1})
    if target == "on_hold":
        lines = [{"sku": "POSTER-A2", "quantity": 2}]
    if target == "picking":  # one unit scanned of several: the order stays picking
        lines.append({"sku": "MUG-LOGO", "quantity": 1})
    order, _ = placement.place_order({
        "customer": {"email": email, "name": name, "phone": phone, "shipping_address": address},
        "lines": lines, "channel": "demo", "gift": index == 4, "coupon": "WELCOME10" if index == 2 else None})
    if target in ("placed", "on_hold"):
        return
    if target == "cancelled":
        orders.cancel_order(order.id, "customer changed their mind")
        return
    payments.pay_order(order.id, reference=f"bank transfer {order.number}")
    if target == "paid":
        return
    scans = _scans(order)
    if target == "picking":
        warehouse.pick_order(order.id, scans[:1])
        return
    warehouse.pick_order(order.id, scans)
    if target == "picked":
        return
    orders.confirm_order(order.id)
    if target == "confirmed":
        return
    warehouse.pack_order(order.id, _scans(orders.get_order(order.id)))
    if target == "packed":
        return
    shipping.ship_order(order.id, "generic", "standard")
    if target == "shipped":
        return
    orders.deliver_order(order.id, source="demo")


def _scans(order) -> list[str]:
    """What a warehouse worker would scan: serials for tracked products, barcodes otherwise."""
    from engine.models import SerialUnit

    scans = []
    for line in order.lines:
        product = db.session.get_one(Product, line.product_id)
        if product.track_serials:
            if line.serials:
                scans.extend(line.serials)
            else:
                # the units placement reserved for the line: where the pick list sends the picker
                held = db.session.execute(select(SerialUnit.serial).where(
                    SerialUnit.line_id == line.id, SerialUnit.status == "reserved")
                    .order_by(SerialUnit.id).limit(line.quantity)).scalars().all()
                scans.extend(held)
        else:
            scans.extend([product.barcode or product.sku] * line.quantity)
    return scans
