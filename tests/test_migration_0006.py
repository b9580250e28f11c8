"""Revision 0006_core_locations from the previous head: existing locations keep working as paths."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401 (fixtures)

from engine import schema
from engine.db import db

REVISION = "0006_core_locations"


def test_0006_turns_existing_locations_into_warehouses_and_bins(shop, database):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO products (id, sku, name, price, currency, barcode, track_serials, allow_backorder, "
            "reorder_point, reorder_quantity, weight_grams, created_at) VALUES (1, 'MUG', 'Mug', 1290, 'EUR', "
            "NULL, false, false, 0, 0, 0, :now)"), {"now": NOW})
        # what receipts made before: MAIN, a one-segment code, a lower-case one, and a code with slashes
        for code in ("MAIN", "BACK", "store", "WEST/SHELF/A-1"):
            conn.execute(sa.text("INSERT INTO locations (code, name) VALUES (:code, :code)"), {"code": code})
            location_id = conn.execute(sa.text("SELECT id FROM locations WHERE code = :code"), {"code": code}).scalar()
            conn.execute(sa.text("INSERT INTO stock_levels (id, product_id, location_id, on_hand, reserved) "
                                 "VALUES (:id, 1, :id, 2, 0)"), {"id": location_id})  # level id = location id
            conn.execute(sa.text("INSERT INTO stock_movements (product_id, location_id, quantity, kind, created_at) "
                                 "VALUES (1, :id, 2, 'receipt', :now)"), {"id": location_id, "now": NOW})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT l.code, l.kind, p.code, l.pickable FROM locations l LEFT JOIN locations p ON p.id = l.parent_id "
            "ORDER BY l.code")).all()
        assert [(c, k, p, bool(pick)) for c, k, p, pick in rows] == [
            ("BACK", "warehouse", None, True), ("MAIN", "warehouse", None, True),
            ("WEST", "warehouse", None, True),                       # made for the bin's path
            ("WEST/SHELF", "bin", "WEST", True),
            ("WEST/SHELF/A-1", "bin", "WEST/SHELF", True),
            ("store", "warehouse", None, True)]
        assert "stock_transfers" in sa.inspect(conn).get_table_names()
    # a CHECK holds: a bin needs its parent
    with pytest.raises(sa.exc.IntegrityError), app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO locations (code, name, kind, pickable, created_at) "
                             "VALUES ('X', 'X', 'bin', true, :now)"), {"now": NOW})
    # the API (the code at every head) serves them: stock at every old code, orders allocate from them, the
    # lower-case code by its name
    assert run(app, "db", "upgrade").exit_code == 0
    with app.app_context():
        from engine.services import auth

        _, key = auth.create_api_key("t", ["read", "write"])
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        stock = client.get("/api/v1/stock/MUG", headers=headers).get_json()
        assert stock["on_hand"] == 8 and len(stock["locations"]) == 4
        assert client.get("/api/v1/locations/WEST/SHELF/A-1", headers=headers).get_json()["on_hand"] == 2
        moved = client.post("/api/v1/stock/transfers", headers=headers,
                            json={"sku": "MUG", "quantity": 2, "from": "store", "to": "MAIN"})
        assert moved.status_code == 201, moved.get_json()
        db.session.remove()

    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context():
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("locations")}
        assert columns == {"id", "code", "name"}
        assert "stock_transfers" not in sa.inspect(db.engine).get_table_names()
        db.session.remove()
