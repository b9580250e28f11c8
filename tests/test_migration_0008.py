"""Migration 0008_core_purchasing: purchase orders become orders with lines (same ids and statuses, numbered),
products' reorder settings become their product-wide rules, and the downgrade puts the old shape back."""

from __future__ import annotations

import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401 - fixtures

from engine import schema
from engine.db import db

REVISION = "0008_core_purchasing"


def test_0008_turns_purchase_orders_into_lines_and_reorder_settings_into_rules(shop, database):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    schema.upgrade(app, previous)
    with app.app_context(), db.engine.begin() as conn:
        for product_id, sku, point in ((1, "MUG", 3), (2, "CAP", 0), (3, "PEN", 5)):
            conn.execute(sa.text(
                "INSERT INTO products (id, sku, name, price, currency, barcode, track_serials, allow_backorder, "
                "reorder_point, reorder_quantity, weight_grams, created_at) VALUES (:id, :sku, :sku, 1290, 'EUR', "
                "NULL, false, true, :point, 10, 0, :now)"), {"id": product_id, "sku": sku, "point": point, "now": NOW})
        conn.execute(sa.text("INSERT INTO locations (id, code, name, kind, pickable, created_at) VALUES (1, 'MAIN', 'Main warehouse', 'warehouse', true, CURRENT_TIMESTAMP)"))
        for level_id, product_id, on_hand in ((1, 1, 8), (2, 3, 2)):  # MUG above its point, PEN below
            conn.execute(sa.text("INSERT INTO stock_levels (id, product_id, location_id, on_hand, reserved) "
                                 "VALUES (:id, :p, 1, :q, 0)"), {"id": level_id, "p": product_id, "q": on_hand})
        for po_id, product_id, quantity, status in ((4, 1, 10, "draft"), (7, 2, 3, "received"),
                                                    (9, 1, 5, "cancelled"), (12, 3, 2, "ordered")):
            conn.execute(sa.text(
                "INSERT INTO purchase_orders (id, product_id, quantity, status, reason, created_at) VALUES "
                "(:id, :p, :q, :s, 'stock low', :now)"), {"id": po_id, "p": product_id, "q": quantity, "s": status,
                                                           "now": NOW})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        orders = conn.execute(sa.text("SELECT id, number, status, draft_key FROM purchase_orders ORDER BY id")).all()
        assert [tuple(r) for r in orders] == [(4, "PO-000004", "draft", "product:1"), (7, "PO-000007", "received", None),
                                              (9, "PO-000009", "cancelled", None), (12, "PO-000012", "ordered", None)]
        lines = conn.execute(sa.text(
            "SELECT purchase_order_id, product_id, quantity, received, damaged, short_quantity, over_quantity "
            "FROM purchase_order_lines ORDER BY purchase_order_id")).all()
        assert [tuple(r) for r in lines] == [(4, 1, 10, 0, 0, 10, 0), (7, 2, 3, 3, 0, 0, 0), (9, 1, 5, 0, 0, 5, 0),
                                             (12, 3, 2, 0, 0, 2, 0)]
        rules = conn.execute(sa.text("SELECT product_id, location_id, reorder_point, reorder_quantity, state "
                                     "FROM reorder_rules ORDER BY product_id")).all()
        assert [tuple(r) for r in rules] == [(1, None, 3, 10, "above"), (3, None, 5, 10, "below")]
        columns = {c["name"] for c in sa.inspect(conn).get_columns("purchase_orders")}
        assert "product_id" not in columns and "quantity" not in columns
    with app.app_context():
        from engine.services import purchasing

        draft = purchasing.find_by_number("PO-000004")
        assert (draft.product.sku, draft.quantity, draft.status) == ("MUG", 10, "draft")
        db.session.remove()

    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, product_id, quantity, status FROM purchase_orders ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(4, 1, 10, "draft"), (7, 2, 3, "received"), (9, 1, 5, "cancelled"),
                                            (12, 3, 2, "ordered")]
        assert "reorder_rules" not in sa.inspect(conn).get_table_names()
    assert run(app, "db", "upgrade").exit_code == 0
    assert run(app, "db", "check").exit_code == 0
