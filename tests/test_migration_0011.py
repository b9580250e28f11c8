"""Revision 0011_core_customers_coupons: existing profiles keep their statistics and gain their order counts per
currency and their first and last order dates; the COUPONS setting keeps working after it; the downgrade
removes what it added."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from conftest import ApiClient, new_key, order_body, product, receive
from test_migrations import NOW, _at_previous_head, empty_url, run, shop  # noqa: F401 - fixtures

from engine import jobs, schema
from engine.db import db

REVISION = "0011_core_customers_coupons"
ADDED = {"company", "tax_id", "tax_id_checked", "billing_address", "notes", "locale", "vip_by_staff",
         "orders_by_currency", "first_order_at", "last_order_at", "merged_into_id", "merged_at"}


def _previous(app) -> str:
    with app.app_context():
        return schema._script(app).get_revision(REVISION).down_revision


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def test_0011_keeps_customers_statistics_and_adds_counts_dates_and_coupons(shop, database):  # noqa: F811
    app = shop(COUPONS={"WELCOME10": {"category": "welcome", "percent_off": 10}})
    _at_previous_head(app)
    assert run(app, "db", "upgrade", _previous(app)).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        for order_id, currency, status, when in ((3, "JPY", "paid", "2026-02-01 09:00:00"),
                                                 (4, "JPY", "cancelled", "2026-03-01 09:00:00")):
            conn.execute(sa.text(
                "INSERT INTO orders (id, status, payment_status, payment_provider, channel, customer_id, email, "
                "customer_name, shipping_address, currency, subtotal, discount_total, shipping_total, tax_total, "
                "total, paid_total, refunded_total, gift, non_stock_lines, tax_lines, prices_include_tax, tax_status, "
                "created_at, updated_at) VALUES (:id, :status, 'paid', 'manual', 'api', 1, 'ann@example.com', 'Ann', "
                "'{}', :currency, 3000, 0, 0, 0, 3000, 3000, 0, false, '[]', '[]', false, 'not_given', :when, :when)"),
                {"id": order_id, "status": status, "currency": currency, "when": when})
        conn.execute(sa.text("UPDATE customers SET order_count = 3, spent_by_currency = :spent, total_spent = 4000, "
                             "currency = 'EUR' WHERE id = 1"), {"spent": json.dumps({"EUR": 4000, "JPY": 3000})})
        conn.execute(sa.text("INSERT INTO products (id, sku, name, price, currency, track_serials, allow_backorder, "
                             "reorder_point, reorder_quantity, weight_grams, created_at) VALUES (100, 'TEA', 'Tea', "
                             "3000, 'JPY', false, false, 0, 0, 0, :now)"), {"now": NOW})
        conn.execute(sa.text("INSERT INTO order_lines (id, order_id, product_id, sku, name, quantity, unit_price, "
                             "backordered, picked_quantity, returned_quantity, serials) VALUES (100, 3, 100, 'TEA', "
                             "'Tea', 1, 3000, 0, 0, 0, '[]')"))

    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT order_count, spent_by_currency, total_spent, currency, orders_by_currency, first_order_at, "
            "last_order_at, merged_into_id, tax_id_checked FROM customers WHERE id = 1")).one()
        assert (row.order_count, _json(row.spent_by_currency), row.total_spent, row.currency) == (
            3, {"EUR": 4000, "JPY": 3000}, 4000, "EUR")
        assert _json(row.orders_by_currency) == {"EUR": 2, "JPY": 1}  # the cancelled order is not counted
        assert str(row.first_order_at).startswith(NOW[:16])
        assert str(row.last_order_at).startswith("2026-03-01 09:00")  # a cancelled order was still placed then
        assert (row.merged_into_id, bool(row.tax_id_checked)) == (None, False)
        assert conn.execute(sa.text("SELECT gift FROM order_lines WHERE id = 100")).scalar_one() in (False, 0)
        assert conn.execute(sa.text("SELECT COUNT(*) FROM coupons")).scalar_one() == 0
    with app.app_context(), db.engine.begin() as conn:  # the new CHECK holds: a gift line is free
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text("UPDATE order_lines SET gift = true WHERE id = 100"))

    assert run(app, "db", "downgrade", _previous(app)).exit_code == 0
    with app.app_context():
        inspector = sa.inspect(db.engine)
        assert not ADDED & {c["name"] for c in inspector.get_columns("customers")}
        assert "gift" not in {c["name"] for c in inspector.get_columns("order_lines")}
        assert not {"coupons", "coupon_uses"} & set(inspector.get_table_names())

    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert run(app, "db", "check").exit_code == 0
    if database == "postgresql":  # the rows above were inserted with their ids: move the sequences past them
        with app.app_context(), db.engine.begin() as conn:
            for table in ("orders", "order_lines", "customers", "products", "payments"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1000)"))
    api = ApiClient(app.test_client(), new_key(app))
    product(api, "MUG", price=2000)
    receive(api, "MUG", 5)
    resp = api.post("/orders", order_body([("MUG", 1)], email="ann@example.com", coupon="WELCOME10"))
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert order["totals"]["discount"] == 200 and {"coupon:welcome", "repeat"} <= set(order["flags"])
    profile = api.get("/customers/1").get_json()
    assert profile["orders_by_currency"] == {"EUR": 3, "JPY": 1} and profile["order_count"] == 4
    assert profile["total_spent_by_currency"] == {"EUR": 5800, "JPY": 3000}
    jobs.drain(app)  # the placement's stage hooks finish before the fixture drops the schema
