"""Serial units under concurrency (threads released together; PostgreSQL and SQLite): one serial scanned
into 16 orders at once is picked by exactly one; placements, receipts and picks racing on one product keep
the levels, the ledger and the units in agreement."""

from __future__ import annotations

from collections import Counter

from conftest import order_body, place, product, receive
from invariants import check_stock_invariants
from sqlalchemy import select
from test_concurrency import answer, together

from engine.db import db
from engine.models import SerialUnit


def test_sixteen_pickers_scanning_one_serial_into_different_orders_one_wins(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 32, serials=[f"P-{i:02d}" for i in range(1, 33)])
    orders = [place(api, [("PHONE", 1)], email=f"c{i}@example.com") for i in range(16)]
    for order in orders:  # each holds one of P-01..P-16; P-20 is free, so any of them could take it
        assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    results = together(app, api.key, [
        (lambda oid: lambda client: answer(client.post(f"/orders/{oid}/pick", {"scans": ["P-20"]})))(order["id"])
        for order in orders])
    assert Counter(status for status, _ in results) == {200: 1, 422: 15}, results
    winner = next(body for status, body in results if status == 200)
    assert winner["status"] == "picked" and winner["lines"][0]["serials"] == ["P-20"]
    for status, body in results:
        if status == 422:
            message, code = body["errors"]["scans"]["0"]
            assert code == "serial_picked" and f"order {winner['number']}" in message, body
    with app.app_context():
        picked = db.session.execute(select(SerialUnit.serial).where(SerialUnit.status == "picked")).scalars().all()
        check_stock_invariants()
    assert picked == ["P-20"]


def test_placements_receipts_and_swapping_picks_racing_on_one_product_keep_the_units_right(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 12, serials=[f"P-{i:02d}" for i in range(1, 13)])
    paid = [place(api, [("PHONE", 1)], email=f"p{i}@example.com") for i in range(4)]  # P-01..P-04
    for order in paid:
        assert api.post(f"/orders/{order['id']}/pay").status_code == 200

    def buy(email):
        return lambda c: answer(c.post("/orders", order_body([("PHONE", 1)], email=email)))

    jobs = [buy(f"n{i}@example.com") for i in range(6)]
    jobs += [lambda c: answer(c.post("/stock/receipts", {"sku": "PHONE", "quantity": 2, "generate": True}))] * 3
    # each picker scans a unit that was free when the race started: a placement may reserve it first
    jobs += [(lambda oid, serial: lambda c: answer(c.post(f"/orders/{oid}/pick", {"scans": [serial]})))(
        order["id"], f"P-{5 + n:02d}") for n, order in enumerate(paid)]
    results = together(app, api.key, jobs)
    assert all(status in (200, 201, 422) for status, _ in results), results
    for status, body in results:
        if status == 422:
            assert body["errors"]["scans"]["0"][1] == "reserved_for_other_order", body
    with app.app_context():
        check_stock_invariants()
    assert api.get("/stock/PHONE").get_json()["on_hand"] == 18
