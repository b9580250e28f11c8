"""Revision 0007_core_serials from the revision before it: picked and shipped units keep their status
(a picked one gets its line's open reservation), the open reservations of serial-tracked products reserve
their oldest in-stock units, every unit gets a ``received`` event; the downgrade gives reserved units back."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from test_migrations import empty_url, run, shop  # noqa: F401 - the fixtures

from engine import schema
from engine.db import db

REVISION = "0007_core_serials"


def _fill(conn, table: str, values: dict) -> None:
    """Insert ``values`` into the old table, giving every other NOT NULL column without a default a value."""
    row = dict(values)
    for column in sa.inspect(conn).get_columns(table):
        if column["name"] in row or column["nullable"] or column.get("default") is not None \
                or column.get("autoincrement") is True:
            continue
        kind = str(column["type"]).upper()
        row[column["name"]] = (datetime.now(UTC) if "TIME" in kind or "DATE" in kind else
                               False if "BOOL" in kind else "{}" if "JSON" in kind else
                               0 if "INT" in kind or "NUMERIC" in kind else "x")
    names = ", ".join(row)
    conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"), row)


def _old_shop(app) -> None:
    with app.app_context(), db.engine.begin() as conn:
        _fill(conn, "locations", {"id": 1, "code": "MAIN", "name": "Main", "kind": "warehouse", "pickable": True})
        _fill(conn, "products", {"id": 1, "sku": "PHONE", "name": "Phone", "price": 100, "currency": "EUR",
                                 "track_serials": True})
        _fill(conn, "customers", {"id": 1, "email": "ann@example.com"})
        for order_id in (1, 2):
            _fill(conn, "orders", {"id": order_id, "customer_id": 1, "status": "paid", "currency": "EUR",
                                   "email": "ann@example.com", "customer_name": "Ann"})
        _fill(conn, "order_lines", {"id": 1, "order_id": 1, "product_id": 1, "sku": "PHONE", "name": "Phone",
                                    "quantity": 2, "unit_price": 100, "picked_quantity": 1, "serials": '["P-4"]'})
        _fill(conn, "order_lines", {"id": 2, "order_id": 2, "product_id": 1, "sku": "PHONE", "name": "Phone",
                                    "quantity": 1, "unit_price": 100, "serials": '["P-5"]'})
        _fill(conn, "reservations", {"id": 1, "order_id": 1, "line_id": 1, "product_id": 1, "location_id": 1,
                                     "quantity": 2, "status": "open"})
        _fill(conn, "reservations", {"id": 2, "order_id": 2, "line_id": 2, "product_id": 1, "location_id": 1,
                                     "quantity": 1, "status": "fulfilled"})
        for unit_id, serial, status, line_id in ((1, "P-1", "in_stock", None), (2, "P-2", "in_stock", None),
                                                 (3, "P-3", "in_stock", None), (4, "P-4", "picked", 1),
                                                 (5, "P-5", "shipped", 2)):
            _fill(conn, "serial_units", {"id": unit_id, "product_id": 1, "location_id": 1, "serial": serial,
                                         "status": status, "line_id": line_id})


def _units(app) -> dict:
    with app.app_context(), db.engine.connect() as conn:
        columns = "serial, status, line_id" + (", reservation_id" if "reservation_id" in {
            c["name"] for c in sa.inspect(conn).get_columns("serial_units")} else "")
        return {row[0]: tuple(row[1:]) for row in conn.execute(sa.text(f"SELECT {columns} FROM serial_units"))}


def test_0007_reserves_units_of_open_reservations_and_keeps_picked_and_shipped(shop):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    result = run(app, "db", "upgrade", previous)
    assert result.exit_code == 0, result.output
    _old_shop(app)
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    assert _units(app) == {"P-1": ("reserved", 1, 1), "P-2": ("in_stock", None, None),
                           "P-3": ("in_stock", None, None), "P-4": ("picked", 1, 1), "P-5": ("shipped", 2, None)}
    with app.app_context(), db.engine.connect() as conn:
        events = conn.execute(sa.text("SELECT u.serial, e.kind, e.status FROM serial_events e "
                                      "JOIN serial_units u ON u.id = e.unit_id ORDER BY u.serial")).all()
    assert [tuple(e) for e in events] == [("P-1", "received", "reserved"), ("P-2", "received", "in_stock"),
                                          ("P-3", "received", "in_stock"), ("P-4", "received", "picked"),
                                          ("P-5", "received", "shipped")]
    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    assert _units(app) == {"P-1": ("in_stock", None), "P-2": ("in_stock", None), "P-3": ("in_stock", None),
                           "P-4": ("picked", 1), "P-5": ("shipped", 2)}
    with app.app_context():
        assert "serial_events" not in sa.inspect(db.engine).get_table_names()
