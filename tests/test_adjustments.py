"""Stock adjustments (POST /stock/adjustments): reasons, staff, serials, reserved stock, the ledger."""

from __future__ import annotations

import pytest
from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import select

from engine.db import db
from engine.models import SerialUnit, StockMovement


def adjust(api, sku, expect=201, **body):
    resp = api.post("/stock/adjustments", {"sku": sku, "staff": "ann@shop.example", **body})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def movements(app):
    with app.app_context():
        rows = db.session.execute(select(StockMovement.kind, StockMovement.quantity, StockMovement.reason,
                                         StockMovement.staff, StockMovement.note).order_by(StockMovement.id)).all()
        db.session.rollback()
    return [tuple(r) for r in rows]


def serial_statuses(app):
    with app.app_context():
        rows = dict(db.session.execute(select(SerialUnit.serial, SerialUnit.status)).all())
        db.session.rollback()
    return rows


def test_damage_and_found_write_one_ledger_row_each_with_reason_staff_and_note(app, api):
    product(api, "MUG")
    receive(api, "MUG", 10)
    body = adjust(api, "MUG", quantity=-2, reason="damage", note="dropped a box")
    assert (body["quantity"], body["reason"], body["staff"], body["location"]) == (-2, "damage", "ann@shop.example",
                                                                                 "MAIN")
    assert body["stock"]["on_hand"] == 8
    adjust(api, "MUG", quantity=1, reason="found")
    adjust(api, "MUG", quantity=-1, reason="count_correction")
    assert stock_of(api, "MUG")["on_hand"] == 8
    assert movements(app)[1:] == [("adjustment", -2, "damage", "ann@shop.example", "dropped a box"),
                                  ("adjustment", 1, "found", "ann@shop.example", None),
                                  ("adjustment", -1, "count_correction", "ann@shop.example", None)]
    with app.app_context():
        check_stock_invariants()


def test_an_adjustment_cannot_take_on_hand_below_reserved(app, api):
    product(api, "MUG")
    receive(api, "MUG", 5)
    place(api, [("MUG", 4)])
    body = adjust(api, "MUG", expect=409, quantity=-2, reason="loss")
    assert body["code"] == "below_reserved" and "only 1 of MUG available" in body["message"]
    assert stock_of(api, "MUG")["on_hand"] == 5
    adjust(api, "MUG", quantity=-1, reason="loss")
    assert stock_of(api, "MUG")["available"] == 0


@pytest.mark.parametrize("body, status, field", [
    ({"quantity": 0, "reason": "damage"}, 422, "quantity"),
    ({"quantity": 2, "reason": "damage"}, 422, "quantity"),
    ({"quantity": -2, "reason": "found"}, 422, "quantity"),
    ({"quantity": -1, "reason": "stolen"}, 422, "reason"),
    ({"quantity": -1, "reason": "loss", "staff": ""}, 422, "staff"),
    ({"quantity": -1, "reason": "loss", "staff": "   "}, 422, "staff"),
    ({"quantity": -1, "reason": "loss", "location": "NOWHERE"}, 422, "location"),
    ({"quantity": -1, "reason": "loss", "serials": ["S1"]}, 422, "serials"),
    ({"reason": "loss"}, 422, "quantity"),
    ({"quantity": -1, "reason": "loss", "colour": "red"}, 422, "colour"),
    ({"quantity": -4, "reason": "loss"}, 409, "quantity"),
])
def test_bad_adjustments_are_refused_and_change_nothing(app, api, body, status, field):
    product(api, "MUG")
    receive(api, "MUG", 3)
    before = movements(app)
    answer = adjust(api, "MUG", expect=status, **body)
    assert field in answer["errors"], answer
    assert answer["message"]
    assert movements(app) == before and stock_of(api, "MUG")["on_hand"] == 3


def test_missing_staff_and_unknown_sku_are_422(app, api):
    resp = api.post("/stock/adjustments", {"sku": "MUG", "quantity": 1, "reason": "found"})
    assert resp.status_code == 422 and "staff" in resp.get_json()["errors"]
    answer = adjust(api, "NOPE", expect=422, quantity=1, reason="found")
    assert "unknown sku" in answer["message"]


def test_serial_units_are_scrapped_and_found_again(app, api):
    product(api, "PHONE", track_serials=True)
    receive(api, "PHONE", 3, serials=["P1", "P2", "P3"])
    body = adjust(api, "PHONE", serials=["P1"], reason="damage")
    assert body["quantity"] == -1 and body["serials"] == ["P1"]
    assert serial_statuses(app) == {"P1": "scrapped", "P2": "in_stock", "P3": "in_stock"}
    body = adjust(api, "PHONE", serials=["P1", "P9"], reason="found")
    assert body["quantity"] == 2 and body["stock"]["on_hand"] == 4
    assert serial_statuses(app) == {"P1": "in_stock", "P2": "in_stock", "P3": "in_stock", "P9": "in_stock"}
    adjust(api, "PHONE", serials=["P2"], reason="count_correction")  # on hand: taken away
    adjust(api, "PHONE", serials=["P2"], quantity=1, reason="count_correction")  # scrapped: back
    assert stock_of(api, "PHONE")["on_hand"] == 4
    with app.app_context():
        check_stock_invariants()


@pytest.mark.parametrize("body, status, code", [
    ({"serials": ["P1"], "reason": "found"}, 409, "serial_on_hand"),
    ({"serials": ["P7"], "reason": "loss"}, 422, "validation_error"),
    ({"serials": ["P1", "P1"], "reason": "loss"}, 422, "validation_error"),
    ({"serials": ["P1"], "quantity": -2, "reason": "loss"}, 422, "validation_error"),
    ({"quantity": -1, "reason": "loss"}, 422, "validation_error"),
    ({"serials": ["P1"], "reason": "loss", "location": "MAIN/B"}, 422, "validation_error"),
])
def test_bad_serial_adjustments_change_nothing(app, api, body, status, code):
    product(api, "PHONE", track_serials=True)
    receive(api, "PHONE", 2, serials=["P1", "P2"])
    before = movements(app)
    answer = adjust(api, "PHONE", expect=status, **body)
    assert answer["code"] == code, answer
    assert movements(app) == before and serial_statuses(app) == {"P1": "in_stock", "P2": "in_stock"}


def test_a_picked_or_shipped_serial_is_not_adjusted(app, api):
    product(api, "PHONE", track_serials=True)
    receive(api, "PHONE", 2, serials=["P1", "P2"])
    order = place(api, [("PHONE", 1)])
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["P1"]}).status_code == 200
    answer = adjust(api, "PHONE", expect=409, serials=["P1"], reason="loss")
    assert answer["code"] == "serial_not_in_stock" and "P1 (picked)" in answer["message"]


def test_found_units_fill_a_waiting_backorder(app, api):
    product(api, "CAP", allow_backorder=True)
    order = place(api, [("CAP", 2)])
    assert order["status"] == "on_hold"
    adjust(api, "CAP", quantity=2, reason="found")
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "placed"
    assert stock_of(api, "CAP")["reserved"] == 2
