"""Revision 0015_core_stock_rule_flag: the stock levels of products with a reorder rule for a location are
flagged from the stored rules (a product-wide rule alone flags nothing: its point is on the product), and the
way back drops the column."""

from __future__ import annotations

import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401

from engine import schema
from engine.db import db

REVISION = "0015_core_stock_rule_flag"


def test_0015_flags_the_levels_of_products_with_location_rules(shop, database):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        for product_id, sku in ((1, "MUG"), (2, "CAP"), (3, "TEE")):
            conn.execute(sa.text(
                "INSERT INTO products (id, sku, name, price, currency, track_serials, allow_backorder, reorder_point, "
                "reorder_quantity, weight_grams, created_at) VALUES (:id, :sku, :sku, 100, 'EUR', false, false, "
                ":point, 0, 0, :now)"), {"id": product_id, "sku": sku, "point": 3 if sku == "CAP" else 0, "now": NOW})
        for location_id, code in ((1, "MAIN"), (2, "STORE")):
            conn.execute(sa.text("INSERT INTO locations (id, code, name, kind, pickable, created_at) "
                                 "VALUES (:id, :code, :code, 'warehouse', true, CURRENT_TIMESTAMP)"),
                         {"id": location_id, "code": code})
        level_id = 0
        for product_id in (1, 2, 3):
            for location_id in (1, 2):
                level_id += 1
                conn.execute(sa.text("INSERT INTO stock_levels (id, product_id, location_id, on_hand, reserved) "
                                     "VALUES (:id, :product, :location, 5, 0)"),
                             {"id": level_id, "product": product_id, "location": location_id})
        # MUG: a rule at STORE (flags both its levels); CAP: the product-wide rule only; TEE: none
        for rule_id, product_id, location_id in ((1, 1, 2), (2, 2, None)):
            conn.execute(sa.text("INSERT INTO reorder_rules (id, product_id, location_id, reorder_point, "
                                 "reorder_quantity, state) VALUES (:id, :product, :location, 2, 0, 'above')"),
                         {"id": rule_id, "product": product_id, "location": location_id})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, product_id, has_location_rules, on_hand FROM stock_levels "
                                    "ORDER BY id")).all()
        assert [(r[0], r[1], bool(r[2]), r[3]) for r in rows] == [
            (1, 1, True, 5), (2, 1, True, 5), (3, 2, False, 5), (4, 2, False, 5), (5, 3, False, 5), (6, 3, False, 5)]
        # a level written without the column (a script, a bulk seed) is not flagged
        conn.execute(sa.text("INSERT INTO locations (id, code, name, kind, pickable, created_at) "
                             "VALUES (3, 'BACK', 'BACK', 'warehouse', true, CURRENT_TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO stock_levels (id, product_id, location_id, on_hand, reserved) "
                             "VALUES (7, 3, 3, 0, 0)"))
        assert not conn.execute(sa.text("SELECT has_location_rules FROM stock_levels WHERE id = 7")).scalar()
    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        assert "has_location_rules" not in {c["name"] for c in sa.inspect(db.engine).get_columns("stock_levels")}
        assert conn.execute(sa.text("SELECT count(*) FROM stock_levels")).scalar() == 7
