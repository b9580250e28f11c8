"""Generated serials: from the pattern and the product's counter, with an ISO 7064 Mod 37,36 check
character; unique also under concurrent receipts; big receipts answer a count with first and last."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import product, receive
from invariants import check_stock_invariants
from sqlalchemy import func, select
from stdnum.iso7064 import mod_37_36
from test_concurrency import answer, together

from engine.db import db, utcnow
from engine.models import SerialEvent, SerialUnit
from engine.services.serials import check_character, serial_is_valid


def test_generated_serials_follow_the_pattern_and_carry_a_check_character(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    body = receive(api, "PHONE", 3, generate=True)
    year = utcnow().year
    serials = body["generated"]["serials"]
    assert [s[:-1] for s in serials] == [f"PHONE-{year}{n:06d}" for n in (1, 2, 3)]
    for serial in serials:
        assert serial_is_valid(serial)
        assert mod_37_36.is_valid(serial.replace("-", ""))  # the check character is stdnum's own
    assert (body["generated"]["count"], body["generated"]["first"], body["generated"]["last"]) == (
        3, serials[0], serials[-1])
    assert body["on_hand"] == 3
    again = receive(api, "PHONE", 2, generate=True)["generated"]["serials"]
    assert [s[:-1] for s in again] == [f"PHONE-{year}{n:06d}" for n in (4, 5)]  # the counter goes on
    custom = receive(api, "PHONE", 1, serial_pattern="X{yy}{mm}-{seq:04d}")["generated"]["serials"][0]
    assert custom[:-1] == f"X{year % 100:02d}{utcnow().month:02d}-0006" and serial_is_valid(custom)
    assert api.get(f"/serials/{custom}").get_json()["history"][0]["kind"] == "received"


def test_a_mistyped_serial_fails_its_check_character():
    body = "PHONE-2026000042"
    serial = body + check_character(body)
    assert serial_is_valid(serial)
    assert not serial_is_valid(serial.replace("42", "24"))  # two digits swapped
    assert not serial_is_valid(serial[:-2] + ("3" if serial[-2] != "3" else "4") + serial[-1])


def test_generation_errors(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "MUG", price=1290)
    for body, code in (({"sku": "MUG", "quantity": 1, "generate": True}, "validation_error"),
                       ({"sku": "PHONE", "quantity": 1, "generate": True, "serials": ["A"]}, "validation_error"),
                       ({"sku": "PHONE", "quantity": 1, "serial_pattern": "{sku}"}, "invalid_serial_pattern"),
                       ({"sku": "PHONE", "quantity": 1, "serial_pattern": "{sku}{seq}{color}"}, "invalid_serial_pattern"),
                       ({"sku": "PHONE", "quantity": 100_001, "generate": True}, "validation_error")):
        resp = api.post("/stock/receipts", body)
        assert resp.status_code == 422 and resp.get_json()["code"] == code, (body, resp.get_json())
    assert api.get("/stock/PHONE").get_json()["on_hand"] == 0


def test_a_large_generated_receipt_lists_count_first_and_last(api, app):
    product(api, "TAG", price=100, track_serials=True)
    body = receive(api, "TAG", 2500, generate=True)["generated"]
    assert body["count"] == 2500 and body["serials"] is None
    with app.app_context():
        serials = db.session.execute(select(SerialUnit.serial).order_by(SerialUnit.id)).scalars().all()
        events = db.session.execute(select(func.count()).select_from(SerialEvent)).scalar_one()
    assert (serials[0], serials[-1], len(set(serials)), events) == (body["first"], body["last"], 2500, 2500)
    assert all(serial_is_valid(s) for s in serials)


def test_a_scanned_receipt_of_known_serials_is_refused_whole(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 2, serials=["A-1", "A-2"])
    resp = api.post("/stock/receipts", {"sku": "PHONE", "quantity": 3, "serials": ["A-3", "A-2", "A-4"]})
    assert resp.status_code == 409 and resp.get_json()["code"] == "serial_exists" and "A-2" in resp.get_json()["message"]
    assert api.get("/stock/PHONE").get_json()["on_hand"] == 2


@pytest.mark.parametrize("rounds", [2])
def test_concurrent_generated_receipts_never_repeat_a_serial(api, app, rounds):
    product(api, "PHONE", price=59900, track_serials=True)
    for _ in range(rounds):
        results = together(app, api.key, [lambda c: answer(c.post("/stock/receipts", {
            "sku": "PHONE", "quantity": 25, "generate": True}))] * 8)
        assert Counter(status for status, _ in results) == {201: 8}, results
    with app.app_context():
        serials = db.session.execute(select(SerialUnit.serial)).scalars().all()
        check_stock_invariants()
    assert len(serials) == len(set(serials)) == 8 * 25 * rounds
    assert api.get("/stock/PHONE").get_json()["on_hand"] == 8 * 25 * rounds
