"""POST /stock/transfers and ``hookshop stock transfer``: one movement out, one in, atomically (issue #11)."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import order_body, place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_concurrency import answer, together

from engine.db import db
from engine.models import SerialUnit, StockMovement, StockTransfer


def at(api, sku, path):
    """(on_hand, reserved) of ``sku`` at ``path``."""
    entry = next((e for e in stock_of(api, sku)["locations"] if e["location"] == path), None)
    return (entry["on_hand"], entry["reserved"]) if entry else (0, 0)


def transfer(api, expect=201, **body):
    body = {("from" if k == "source" else "to" if k == "destination" else k): v for k, v in body.items()}
    resp = api.post("/stock/transfers", body)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def counts(app):
    with app.app_context():
        result = (db.session.execute(select(func.count()).select_from(StockMovement)).scalar(),
                  db.session.execute(select(func.count()).select_from(StockTransfer)).scalar())
        db.session.rollback()
        return result


@pytest.fixture
def shop(api):
    product(api, "MUG")
    product(api, "CAM", track_serials=True)
    assert api.post("/locations", {"path": "MAIN/A-01"}).status_code == 201
    assert api.post("/locations", {"path": "MAIN/Q", "kind": "quarantine"}).status_code == 201
    receive(api, "MUG", 10)
    receive(api, "CAM", 3, serials=["C-1", "C-2", "C-3"])
    return api


def test_a_transfer_is_one_movement_out_and_one_in(shop, app):
    api = shop
    moved = transfer(api, sku="MUG", quantity=4, source="MAIN", destination="MAIN/A-01", reference="put-away 7")
    assert {k: moved[k] for k in ("sku", "from", "to", "quantity", "serials", "reference")} == {
        "sku": "MUG", "from": "MAIN", "to": "MAIN/A-01", "quantity": 4, "serials": [], "reference": "put-away 7"}
    assert at(api, "MUG", "MAIN") == (6, 0) and at(api, "MUG", "MAIN/A-01") == (4, 0)
    assert stock_of(api, "MUG")["on_hand"] == 10
    with app.app_context():
        rows = db.session.execute(select(StockMovement.quantity, StockMovement.kind, StockMovement.reference)
                                  .where(StockMovement.kind == "transfer").order_by(StockMovement.id)).all()
        assert [tuple(r) for r in rows] == [(-4, "transfer", f"transfer {moved['id']}: put-away 7"),
                                            (4, "transfer", f"transfer {moved['id']}: put-away 7")]
        check_stock_invariants()


def test_serials_move_with_their_units(shop, app):
    api = shop
    moved = transfer(api, sku="CAM", serials=["C-2", "C-3"], source="MAIN", destination="MAIN/A-01")
    assert (moved["quantity"], moved["serials"]) == (2, ["C-2", "C-3"])
    assert at(api, "CAM", "MAIN/A-01") == (2, 0)
    with app.app_context():
        where = dict(db.session.execute(select(SerialUnit.serial, SerialUnit.location_id)).all())
        assert where["C-2"] == where["C-3"] != where["C-1"]
        check_stock_invariants()
    # and back again, one unit
    transfer(api, sku="CAM", serials=["C-2"], source="MAIN/A-01", destination="MAIN")
    assert at(api, "CAM", "MAIN") == (2, 0)


ERRORS = [
    ({"sku": "MUG", "quantity": 11, "source": "MAIN", "destination": "MAIN/A-01"}, 409, "insufficient_stock",
     "only 10 of MUG available at MAIN"),
    ({"sku": "MUG", "quantity": 1, "source": "MAIN", "destination": "MAIN/NOPE"}, 422, "unknown_location",
     "MAIN/NOPE"),
    ({"sku": "MUG", "quantity": 1, "source": "EAST", "destination": "MAIN"}, 422, "unknown_location", "EAST"),
    ({"sku": "MUG", "quantity": 1, "source": "MAIN", "destination": "MAIN"}, 422, "same_location", "two locations"),
    ({"sku": "NOPE", "quantity": 1, "source": "MAIN", "destination": "MAIN/A-01"}, 422, "validation_error", "NOPE"),
    ({"sku": "MUG", "source": "MAIN", "destination": "MAIN/A-01"}, 422, "validation_error", ""),
    ({"sku": "MUG", "quantity": 0, "source": "MAIN", "destination": "MAIN/A-01"}, 422, "validation_error", ""),
    ({"sku": "MUG", "serials": ["X"], "source": "MAIN", "destination": "MAIN/A-01"}, 422, "validation_error",
     "does not track serials"),
    ({"sku": "CAM", "quantity": 1, "source": "MAIN", "destination": "MAIN/A-01"}, 422, "validation_error",
     "serial-tracked"),
    ({"sku": "CAM", "serials": ["C-9"], "source": "MAIN", "destination": "MAIN/A-01"}, 422, "unknown_serial", "C-9"),
    ({"sku": "CAM", "serials": ["C-1", "C-1"], "source": "MAIN", "destination": "MAIN/A-01"}, 422,
     "validation_error", "repeat"),
    ({"sku": "CAM", "serials": ["C-1"], "quantity": 2, "source": "MAIN", "destination": "MAIN/A-01"}, 422,
     "validation_error", "quantity 2"),
    ({"sku": "CAM", "serials": ["C-1"], "source": "MAIN/A-01", "destination": "MAIN"}, 409, "serial_elsewhere",
     "C-1 is at MAIN"),
]


@pytest.mark.parametrize("body, status, code, says", ERRORS)
def test_a_refused_transfer_says_why_and_changes_nothing(shop, app, body, status, code, says):
    api = shop
    before = (counts(app), stock_of(api, "MUG"), stock_of(api, "CAM"))
    resp = transfer(api, expect=status, **body)
    assert resp["code"] == code and says in resp["message"], resp
    assert (counts(app), stock_of(api, "MUG"), stock_of(api, "CAM")) == before


def test_reserved_units_stay_where_they_are(shop, app):
    api = shop
    place(api, [("MUG", 8)])
    resp = transfer(api, expect=409, sku="MUG", quantity=3, source="MAIN", destination="MAIN/A-01")
    assert resp["code"] == "insufficient_stock"
    assert "only 2 of MUG available at MAIN (on hand 10, reserved 8)" in resp["message"]
    transfer(api, sku="MUG", quantity=2, source="MAIN", destination="MAIN/A-01")
    assert at(api, "MUG", "MAIN") == (8, 8)


def test_a_picked_serial_is_refused_naming_its_status(shop, app):
    api = shop
    order = place(api, [("CAM", 1)])
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["C-1"]}).status_code == 200
    before = counts(app)
    resp = transfer(api, expect=409, sku="CAM", serials=["C-1"], source="MAIN", destination="MAIN/A-01")
    assert (resp["code"], resp["errors"]["serials"]) == ("serial_not_in_stock", ["C-1 is picked"])
    # a second order reserves one more unit, the oldest free one (C-2): it stays; C-3 may move
    place(api, [("CAM", 1)], email="bob@example.com")
    before = counts(app)
    resp = transfer(api, expect=409, sku="CAM", serials=["C-2", "C-3"], source="MAIN", destination="MAIN/A-01")
    assert (resp["code"], resp["errors"]["serials"]) == ("serial_not_in_stock", ["C-2 is reserved"])
    assert counts(app) == before
    transfer(api, sku="CAM", serials=["C-3"], source="MAIN", destination="MAIN/A-01")


def test_an_archived_product_can_still_be_moved(shop):
    api = shop
    assert api.patch("/products/MUG", {"archived": True}).status_code == 200
    transfer(api, sku="MUG", quantity=10, source="MAIN", destination="MAIN/Q")
    assert at(api, "MUG", "MAIN/Q") == (10, 0)


def test_stock_in_quarantine_is_on_hand_but_never_allocated(shop):
    api = shop
    transfer(api, sku="MUG", quantity=9, source="MAIN", destination="MAIN/Q")
    assert stock_of(api, "MUG")["on_hand"] == 10
    resp = api.post("/orders", order_body([("MUG", 2)]))
    assert resp.status_code == 409 and "only 1 of MUG available" in resp.get_json()["errors"]["lines"]["0"]["sku"][0]
    place(api, [("MUG", 1)])
    assert at(api, "MUG", "MAIN") == (1, 1) and at(api, "MUG", "MAIN/Q") == (9, 0)


def test_units_arriving_at_a_pickable_location_fill_waiting_backorders(api, app):
    product(api, "POSTER", allow_backorder=True)
    assert api.post("/locations", {"path": "MAIN/Q", "kind": "quarantine"}).status_code == 201
    receive(api, "POSTER", 2, location="MAIN/Q")
    waiting = place(api, [("POSTER", 2)])
    assert waiting["status"] == "on_hold"
    transfer(api, sku="POSTER", quantity=2, source="MAIN/Q", destination="MAIN")
    order = api.get(f"/orders/{waiting['id']}").get_json()
    assert order["status"] == "placed" and order["lines"][0]["backordered"] == 0
    assert at(api, "POSTER", "MAIN") == (2, 2)
    with app.app_context():
        check_stock_invariants()


def test_a_replayed_transfer_moves_once(shop, app):
    api = shop
    body = {"sku": "MUG", "quantity": 3, "from": "MAIN", "to": "MAIN/A-01"}
    first = api.post("/stock/transfers", body, headers={"Idempotency-Key": "t-1"})
    again = api.post("/stock/transfers", body, headers={"Idempotency-Key": "t-1"})
    assert (first.status_code, again.status_code) == (201, 201) and first.get_json() == again.get_json()
    assert at(api, "MUG", "MAIN/A-01") == (3, 0)


def test_the_cli_transfers_and_explains_refusals(shop, app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["stock", "transfer", "MUG", "--from", "MAIN", "--to", "MAIN/A-01",
                                 "--quantity", "2"])
    assert result.exit_code == 0, result.output
    assert "2 x MUG from MAIN to MAIN/A-01" in result.output
    serials = tmp_path / "serials.txt"
    serials.write_text("C-1\nC-2\n\n")
    result = runner.invoke(args=["stock", "transfer", "CAM", "--from", "MAIN", "--to", "MAIN/A-01",
                                 "--serials-file", str(serials)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["stock", "transfer", "CAM", "--from", "MAIN", "--to", "MAIN/A-01",
                                 "--serials", "C-1"])
    assert result.exit_code != 0 and "C-1 is at MAIN/A-01" in result.output
    result = runner.invoke(args=["stock", "transfer", "MUG", "--from", "MAIN", "--to", "MAIN/A-01"])
    assert result.exit_code != 0 and "--quantity" in result.output
    api = shop
    assert at(api, "MUG", "MAIN/A-01") == (2, 0) and at(api, "CAM", "MAIN/A-01") == (2, 0)


def test_transfers_and_orders_racing_on_one_product_keep_the_ledger(shop, app):
    """16 threads: transfers both ways between MAIN and a bin, and orders taking units, on one product."""
    api = shop
    receive(api, "MUG", 10, location="MAIN/A-01")  # 10 at MAIN, 10 at the bin

    def move(i):
        src, dst = ("MAIN", "MAIN/A-01") if i % 2 else ("MAIN/A-01", "MAIN")
        return lambda c: answer(c.post("/stock/transfers", {"sku": "MUG", "quantity": 3, "from": src, "to": dst}))

    def buy(i):
        return lambda c: answer(c.post("/orders", order_body([("MUG", 2)], email=f"r{i}@example.com")))

    results = together(app, api.key, [move(i) if i % 2 else buy(i) for i in range(16)])
    assert all(status < 500 for status, _ in results), results
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {201, 409}, results
    placed = sum(1 for i, (status, _) in enumerate(results) if i % 2 == 0 and status == 201)
    stock = stock_of(api, "MUG")
    assert stock["on_hand"] == 20 and stock["reserved"] == 2 * placed and stock["available"] >= 0
    assert all(e["available"] >= 0 for e in stock["locations"])
    with app.app_context():
        check_stock_invariants()
