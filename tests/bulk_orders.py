"""Many orders at once for listing tests: Core ``executemany`` inserts (orders, one line each, flags),
no placement logic. The ids are given explicitly and PostgreSQL's sequence is moved past them, so
orders placed through the API afterwards get higher ids as usual."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, insert, select, text

from engine.db import db, utcnow
from engine.models import Customer, Order, OrderFlag, OrderLine, Product


@dataclass
class Spec:
    """One order to insert."""

    status: str = "placed"
    channel: str = "api"
    customer: int = 0  # index into the customers insert_orders creates
    flags: list[str] = field(default_factory=list)


def insert_orders(app, specs: list[Spec], customers: int = 3) -> tuple[list[int], list[int]]:
    """Insert ``specs`` oldest first; returns (order ids in the same order, customer ids)."""
    with app.app_context():
        session = db.session
        product = session.execute(select(Product).limit(1)).scalar_one_or_none()
        if product is None:
            product = Product(sku="BULK", name="Bulk", price=1000, currency="EUR")
            session.add(product)
            session.flush()
        first_customer = (session.execute(select(func.max(Customer.id))).scalar() or 0) + 1
        customer_ids = list(range(first_customer, first_customer + customers))
        now = utcnow()
        session.execute(insert(Customer), [
            {"id": cid, "email": f"bulk-{cid}@example.com", "name": f"Bulk {cid}", "addresses": [],
             "preferences": {}, "currency": "EUR", "created_at": now, "updated_at": now} for cid in customer_ids])
        first = (session.execute(select(func.max(Order.id))).scalar() or 0) + 1
        ids = list(range(first, first + len(specs)))
        address = {"line1": "Sample Street 12", "city": "Berlin", "postal_code": "10115", "country": "DE"}
        session.execute(insert(Order), [
            {"id": oid, "status": s.status, "channel": s.channel, "customer_id": customer_ids[s.customer],
             "email": f"bulk-{customer_ids[s.customer]}@example.com", "customer_name": "Bulk",
             "shipping_address": address, "currency": "EUR", "subtotal": product.price, "total": product.price,
             "created_at": now, "updated_at": now} for oid, s in zip(ids, specs, strict=True)])
        session.execute(insert(OrderLine), [
            {"order_id": oid, "product_id": product.id, "sku": product.sku, "name": product.name, "quantity": 1,
             "unit_price": product.price, "serials": []} for oid in ids])
        flag_rows = [{"order_id": oid, "flag": flag, "position": position}
                     for oid, s in zip(ids, specs, strict=True) for position, flag in enumerate(s.flags)]
        if flag_rows:
            session.execute(insert(OrderFlag), flag_rows)
        if session.get_bind().dialect.name == "postgresql":
            for table in ("orders", "customers", "products"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
        session.commit()
    return ids, customer_ids
