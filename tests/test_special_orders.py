"""Special orders: vip by the spending rule per currency or by orders within a period, repeat, zero-priced
thank-you gift lines; every flag filterable with GET /orders?flag=."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import order_body, place, product, receive
from sqlalchemy import update

from engine.db import db, utcnow
from engine.domain import customers as rules
from engine.models import Order


@pytest.fixture
def shop(api):
    product(api, "MUG", price=2000)
    product(api, "TEA", price=500, currency="JPY")
    receive(api, "MUG", 100)
    receive(api, "TEA", 100)
    return api


def flagged(api, flag) -> list[int]:
    resp = api.get(f"/orders?flag={flag}")
    assert resp.status_code == 200
    return [o["id"] for o in resp.get_json()["items"]]


def test_vip_by_spending_is_per_currency(shop, app):
    app.config["VIP_THRESHOLDS"] = {"EUR": 5000, "JPY": 100_000}
    first = place(shop, [("MUG", 2)])
    assert "vip" not in first["flags"]
    assert "vip" not in place(shop, [("TEA", 10)])["flags"]  # 5000 JPY is far from 100000 JPY
    reaching = place(shop, [("MUG", 1)])  # 4000 + 2000 EUR >= 5000
    assert "vip" in reaching["flags"]
    assert shop.get(f"/customers/{first['customer']['id']}").get_json()["vip"] is True
    assert "vip" in place(shop, [("TEA", 1)])["flags"]  # once vip, in every currency
    other = place(shop, [("TEA", 10)], email="yen@example.com")
    assert "vip" not in other["flags"]
    assert flagged(shop, "vip")[-1] == reaching["id"]


def test_vip_by_orders_within_a_period_counts_only_the_recent_ones(shop, app):
    app.config["VIP_THRESHOLD"] = 0
    app.config["VIP_ORDERS"] = {"count": 3, "period": "P30D"}
    old = [place(shop, [("MUG", 1)])["id"] for _ in range(2)]
    with app.app_context():  # an explicit clock: these two orders were placed 40 days ago
        db.session.execute(update(Order).where(Order.id.in_(old)).values(created_at=utcnow() - timedelta(days=40)))
        db.session.commit()
    second = place(shop, [("MUG", 1)])
    assert "vip" not in second["flags"] and "repeat" in second["flags"]  # 1: this one
    assert "vip" not in place(shop, [("MUG", 1)])["flags"]  # 2: the one before and this one
    third = place(shop, [("MUG", 1)])
    assert "vip" in third["flags"]
    assert flagged(shop, "vip") == [third["id"]]
    # a cancelled order does not count
    for _ in range(2):
        cancelled = place(shop, [("MUG", 1)], email="cancel@example.com")
        assert shop.post(f"/orders/{cancelled['id']}/cancel", {}).status_code == 200
    assert "vip" not in place(shop, [("MUG", 1)], email="cancel@example.com")["flags"]


def test_the_vip_orders_period_is_days_or_weeks():
    assert rules.vip_orders_rule({"count": 5, "period": "P365D"}) == (5, timedelta(days=365))
    assert rules.vip_orders_rule({"count": 2, "period": "P2W"}) == (2, timedelta(days=14))
    assert rules.vip_orders_rule(None) is None and rules.vip_orders_rule({"count": 0}) is None
    with pytest.raises(ValueError, match="P365D"):
        rules.vip_orders_rule({"count": 5, "period": "P1Y"})


def test_repeat_flags_every_order_after_the_first(shop):
    first = place(shop, [("MUG", 1)])
    second = place(shop, [("TEA", 1)])
    assert "repeat" not in first["flags"] and "repeat" in second["flags"]
    assert flagged(shop, "repeat") == [second["id"]]


def test_a_thank_you_gift_line_is_free_beside_paid_lines(shop):
    body = order_body([("MUG", 1), ("TEA", 1)])
    body["lines"][1] = {"sku": "MUG", "quantity": 1, "gift": True}
    resp = shop.post("/orders", body)
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert [(ln["unit_price"], ln["gift"]) for ln in order["lines"]] == [(2000, False), (0, True)]
    assert order["totals"]["total"] == 2000
    assert shop.get("/stock/MUG").get_json()["reserved"] == 2  # the gift is picked and shipped like any unit


def test_a_gift_line_alone_needs_a_gift_order(shop):
    body = order_body([("MUG", 1)])
    body["lines"][0]["gift"] = True
    resp = shop.post("/orders", body)
    assert resp.status_code == 422 and resp.get_json()["errors"]["lines"]["0"]["gift"]
    resp = shop.post("/orders", {**body, "gift": True})
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert order["totals"]["total"] == 0 and order["payment_status"] == "paid" and "gift" in order["flags"]
    assert flagged(shop, "gift") == [order["id"]]
    body["lines"][0]["gift"] = 1
    assert shop.post("/orders", body).status_code == 422  # strict booleans


def test_gift_and_coupon_flags_are_filterable(shop):
    order = place(shop, [("MUG", 1)], coupon="WELCOME10", gift=True)
    for flag in ("gift", "coupon:welcome"):
        assert flagged(shop, flag) == [order["id"]]
