"""Returns under concurrency (engine-wide lock order: stock levels, the order, the return, the customer,
the serial units): many threads released together by a barrier, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import select
from test_concurrency import answer, together
from test_returns_rma import shipped

from engine.db import db
from engine.models import Return, SerialUnit


@pytest.fixture
def app_config():
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 20, "max_overflow": 10, "pool_timeout": 60}}


def test_concurrent_returns_of_one_serial_open_one_return(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 2, serials=["P-1", "P-2"])
    oid = shipped(api, [("PHONE", 2, ["P-1", "P-2"])])["id"]
    body = {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-1"]}], "reason": "broken",
            "resolution": "refund"}
    results = together(app, api.key, [lambda c: answer(c.post(f"/orders/{oid}/returns", body))] * 8)
    assert all(status < 500 for status, _ in results), results
    assert Counter(status for status, _ in results) == {201: 1, 409: 7}, results
    assert {b["code"] for s, b in results if s == 409} == {"serial_already_returned"}
    with app.app_context():
        assert len(db.session.execute(select(Return)).scalars().all()) == 1
        assert db.session.execute(select(SerialUnit.status).where(SerialUnit.serial == "P-1")).scalar_one() \
            == "returned"
        db.session.rollback()


def test_concurrent_customer_requests_never_return_more_than_shipped(api, app):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    order = shipped(api, [("MUG", 3, None)])
    body = {"order_number": order["number"], "email": "ann@example.com", "reason": "broken", "resolution": "refund",
            "lines": [{"sku": "MUG", "quantity": 1}]}
    results = together(app, api.key, [lambda c: answer(c.client.post("/api/v1/returns/requests", json=body))] * 8)
    assert Counter(status for status, _ in results) == {201: 3, 422: 5}, results


@pytest.mark.parametrize("condition", ["resellable", "damaged"])
def test_concurrent_receives_of_one_return_receive_it_once(api, app, condition):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 2, serials=["P-1", "P-2"])
    oid = shipped(api, [("PHONE", 2, ["P-1", "P-2"])])["id"]
    rid = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 2, "serials": ["P-1", "P-2"]}],
                                              "reason": "broken", "resolution": "exchange"}).get_json()["id"]
    body = {"lines": [{"sku": "PHONE", "serials": ["P-1"], "condition": condition}]}
    results = together(app, api.key, [lambda c: answer(c.post(f"/returns/{rid}/receive", body))] * 8)
    assert all(status < 500 for status, _ in results), results
    assert Counter(status for status, _ in results) == {200: 1, 409: 7}, results
    assert {b["code"] for s, b in results if s == 409} == {"return_closed"}
    assert stock_of(api, "PHONE")["on_hand"] == 2  # received once
    with app.app_context():
        check_stock_invariants()
        statuses = dict(db.session.execute(select(SerialUnit.serial, SerialUnit.status)).all())
        ret = db.session.get(Return, rid)
        assert (ret.status, ret.replacement_order_id is not None) == ("resolved", True)
        replacement_id = ret.replacement_order_id
        db.session.rollback()
    # the exchange's replacement reserves the resellable units; a damaged one waits in quarantine and the
    # replacement backorders what is missing
    assert statuses == {"P-1": "reserved" if condition == "resellable" else "quarantined", "P-2": "reserved"}
    replacement = api.get(f"/orders/{replacement_id}").get_json()
    assert [line["backordered"] for line in replacement["lines"]] == [0 if condition == "resellable" else 1]
    assert replacement["status"] == ("paid" if condition == "resellable" else "on_hold")  # nothing to pay
