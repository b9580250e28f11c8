"""Revision 0009_core_counts: adjustments get reason, staff and note; the counts tables; the downgrade."""

from __future__ import annotations

import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401  (fixtures)

from engine import schema
from engine.db import db

REVISION = "0009_core_counts"


def test_0009_keeps_the_ledger_and_names_old_adjustments(shop):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO products (id, sku, name, price, currency, track_serials, allow_backorder, "
                             "reorder_point, reorder_quantity, weight_grams, created_at) VALUES (1, 'MUG', 'Mug', 100, "
                             "'EUR', false, false, 0, 0, 0, :now)"), {"now": NOW})
        conn.execute(sa.text("INSERT INTO locations (id, code, name, kind, pickable, created_at) VALUES (1, 'MAIN', 'Main', 'warehouse', true, CURRENT_TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO stock_levels (id, product_id, location_id, on_hand, reserved) "
                             "VALUES (1, 1, 1, 4, 0)"))
        conn.execute(sa.text("INSERT INTO stock_movements (id, product_id, location_id, quantity, kind, reference, "
                             "created_at) VALUES (1, 1, 1, 5, 'receipt', 'po 1', :now), "
                             "(2, 1, 1, -1, 'adjustment', 'a script', :now)"), {"now": NOW})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, quantity, kind, reference, reason, staff FROM stock_movements "
                                    "ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, 5, "receipt", "po 1", None, None),
                                           (2, -1, "adjustment", "a script", "count_correction",
                                            "unknown (before 0009)")]
        tables = set(sa.inspect(conn).get_table_names())
        assert {"stock_counts", "stock_count_lines", "stock_count_serials"} <= tables
    with app.app_context(), db.engine.connect() as conn:  # the CHECK: an adjustment without a reason is refused
        try:
            conn.execute(sa.text("INSERT INTO stock_movements (product_id, location_id, quantity, kind, created_at) "
                                 "VALUES (1, 1, 1, 'adjustment', :now)"), {"now": NOW})
        except sa.exc.IntegrityError:
            conn.rollback()
        else:
            raise AssertionError("an adjustment without reason and staff was stored")
    assert run(app, "db", "upgrade").exit_code == 0
    assert run(app, "db", "check").exit_code == 0
    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("stock_movements")}
        assert not {"reason", "staff", "note"} & columns
        assert "stock_counts" not in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("SELECT sum(quantity) FROM stock_movements")).scalar() == 4
    assert run(app, "db", "upgrade").exit_code == 0
