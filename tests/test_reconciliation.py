"""Reconciliation (GET /stock/reconciliation, hookshop stock reconcile): clean after a full order life,
every injected disagreement reported, CSV that parses, a fixed number of statements per chunk."""

from __future__ import annotations

import csv
import io
import json

from conftest import place, product, receive
from sqlalchemy import event, text
from test_counts import open_count, post, scan

from engine.db import db
from engine.services import reconciliation


def order_life(api):
    """Receipts, an order through every stage with a serial, a return to stock, a held order, adjustments, a count."""
    product(api, "MUG")
    product(api, "PHONE", track_serials=True)
    product(api, "CAP", allow_backorder=True)
    receive(api, "MUG", 5)
    receive(api, "PHONE", 2, serials=["P1", "P2"])
    order = place(api, [("MUG", 2), ("PHONE", 1)])
    oid = order["id"]
    for action, body in (("pay", {}), ("pick", {"scans": ["MUG", "MUG", "P1"]}), ("confirm", {}),
                         ("pack", {"scans": ["MUG", "MUG", "P1"]}),
                         ("ship", {"carrier": "generic", "service": "standard"}), ("deliver", {})):
        assert api.post(f"/orders/{oid}/{action}", body).status_code == 200, action
    ret = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P1"]}],
                                              "reason": "broken", "resolution": "refund"}).get_json()
    assert api.post(f"/returns/{ret['id']}/receive", {}).status_code == 200
    place(api, [("MUG", 1), ("CAP", 2)])  # open reservations and a backorder
    assert api.post("/stock/adjustments", {"sku": "MUG", "quantity": -1, "reason": "damage",
                                           "staff": "ann"}).status_code == 201
    count = open_count(api, skus=["PHONE"])
    scan(api, count["id"], scans=["P1"])
    post(api, count["id"])  # P2 was not counted: scrapped


def run(app, *args):
    """``hookshop stock reconcile <args>`` (click keeps stdout and stderr apart)."""
    return app.test_cli_runner().invoke(args=["stock", "reconcile", *args])


def test_clean_after_a_full_order_life(app, api):
    order_life(api)
    body = api.get("/stock/reconciliation").get_json()
    assert body == {"ok": True, "products": 3, "levels": 2, "differences": []}  # CAP: never in stock
    result = run(app)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def corrupt(app, *statements):
    with app.app_context():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()


def test_every_injected_disagreement_is_reported_and_the_command_fails(app, api, tmp_path):
    order_life(api)
    corrupt(app,
            "UPDATE stock_levels SET on_hand = on_hand + 3 WHERE product_id = (SELECT id FROM products "
            "WHERE sku = 'MUG')",  # the ledger and the level disagree
            "UPDATE serial_units SET status = 'shipped' WHERE serial = 'P1'",  # one unit fewer than on hand
            "UPDATE reservations SET quantity = quantity + 1 WHERE status = 'open'")  # more held than reserved
    with app.app_context():
        db.session.execute(text("INSERT INTO locations (code, name, kind, pickable, created_at) VALUES ('SIDE', 'Side', 'warehouse', true, CURRENT_TIMESTAMP)"))
        db.session.execute(text(
            "INSERT INTO stock_movements (product_id, location_id, quantity, kind, created_at) SELECT p.id, l.id, 2, "
            "'receipt', CURRENT_TIMESTAMP FROM products p, locations l WHERE p.sku = 'CAP' AND l.code = 'SIDE'"))
        db.session.commit()  # a ledger row at a location without a level
    body = api.get("/stock/reconciliation").get_json()
    assert body["ok"] is False
    found = {(d["sku"], d["location"], d["check"], d["level"], d["actual"]) for d in body["differences"]}
    assert found == {("MUG", "MAIN", "ledger", 5, 2), ("MUG", "MAIN", "reservations", 1, 2),
                     ("PHONE", "MAIN", "serials", 1, 0), ("CAP", "SIDE", "ledger", 0, 2)}
    assert all(d["message"] for d in body["differences"])
    assert "no stock level" in next(d["message"] for d in body["differences"] if d["location"] == "SIDE")

    out = tmp_path / "report.csv"
    result = run(app, "--format", "csv", "--output", str(out))
    assert result.exit_code == 1
    assert "4 differences" in result.stderr and "reconciling" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {(r["sku"], r["check"], int(r["difference"])) for r in rows} == {
        ("MUG", "ledger", 3), ("MUG", "reservations", -1), ("PHONE", "serials", 1), ("CAP", "ledger", -2)}
    csv_body = api.get("/stock/reconciliation", headers={"Accept": "text/csv"})
    assert csv_body.mimetype == "text/csv" and len(list(csv.DictReader(io.StringIO(csv_body.text)))) == 4
    assert api.get("/stock/reconciliation?format=csv").text == csv_body.text
    result = run(app)
    assert result.exit_code == 1 and len(json.loads(result.stdout)["differences"]) == 4


def test_bad_format_is_422(app, api):
    resp = api.get("/stock/reconciliation?format=xml")
    assert resp.status_code == 422 and "format" in resp.get_json()["errors"]
    assert api.get("/stock/reconciliation?colour=red").status_code == 422


def test_statements_per_chunk_do_not_grow_with_the_products(app, api):
    """Five statements per chunk of products (its page, levels, ledger, units, reservations), none per product."""
    def statements(chunk):
        seen = []
        with app.app_context():
            engine = db.engine

            def listener(conn, cursor, statement, *args):
                seen.append(statement)

            event.listen(engine, "before_cursor_execute", listener)
            try:
                with reconciliation.snapshot() as conn:
                    assert list(reconciliation.walk(conn, chunk)) == []
            finally:
                event.remove(engine, "before_cursor_execute", listener)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    for index in range(12):
        product(api, f"P{index}", **({"track_serials": True} if index % 3 == 0 else {}))
        receive(api, f"P{index}", 1, **({"serials": [f"S{index}"]} if index % 3 == 0 else {}))
    # the locations once, then per chunk of 5: 5 queries; the empty page that ends the walk
    assert statements(5) == 1 + 3 * 5 + 1
    assert statements(12) == 1 + 1 * 5 + 1
    assert statements(100) == 1 + 1 * 5 + 1
