"""Coupons managed by API and CLI: kinds, validity dates, limits in total and per customer, the use given back
by a cancellation, the race of many placements for the last uses, and the COUPONS setting as a fallback."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from conftest import order_body, place, product, receive
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_concurrency import answer, together
from test_migrations import run

from engine.db import db, utcnow
from engine.models import Coupon, CouponUse, Order


@pytest.fixture
def app_config():
    # enough connections for every thread at once (SQLite keeps its own connect_args)
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 40, "max_overflow": 10, "pool_timeout": 60},
            "COUPONS": {"WELCOME10": {"category": "welcome", "percent_off": 10}}}


def coupon(api, code="SPRING", expect=201, **fields):
    resp = api.post("/coupons", {"code": code, "kind": "percentage", "value": 10, **fields})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


@pytest.fixture
def shop(api):
    product(api, "MUG", price=2000)
    receive(api, "MUG", 200)
    return api


def test_percentage_fixed_amount_and_free_shipping_discount_the_order(shop):
    coupon(shop, "TENOFF", value=10, category="spring")
    coupon(shop, "FIVER", kind="fixed_amount", value=500, currency="eur")
    coupon(shop, "SHIPFREE", kind="free_shipping")
    order = place(shop, [("MUG", 2)], coupon="tenoff")  # codes are case-insensitive
    assert order["totals"]["discount"] == 400 and order["totals"]["total"] == 3600
    assert "coupon:spring" in order["flags"] and order["coupon"] == "tenoff"
    order = place(shop, [("MUG", 1)], coupon="FIVER")
    assert order["totals"]["discount"] == 500 and "coupon:fiver" in order["flags"]
    order = place(shop, [("MUG", 1)], coupon="ShipFree")
    assert order["totals"]["discount"] == 0 and order["totals"]["total"] == 2000  # REST orders ship for 0
    assert "coupon:shipfree" in order["flags"]
    assert shop.get("/orders?flag=coupon:spring").get_json()["items"][0]["coupon"] == "tenoff"
    assert shop.get("/coupons/TENOFF").get_json()["used_count"] == 1


def test_a_fixed_amount_coupon_of_another_currency_is_refused(shop):
    coupon(shop, "YEN", kind="fixed_amount", value=500, currency="JPY")
    resp = shop.post("/orders", order_body([("MUG", 1)], coupon="YEN"))
    assert resp.status_code == 422 and resp.get_json()["code"] == "coupon_not_applicable"
    assert coupon(shop, "BAD", expect=422, kind="fixed_amount", value=500)["errors"] == {
        "currency": ["a fixed amount needs its currency"]}
    assert coupon(shop, "PCT", expect=422, value=150)["errors"]["value"]
    assert coupon(shop, "yen", expect=409)["code"] == "duplicate_coupon"


def test_validity_dates_and_disabled_coupons_refuse_the_order(shop, app):
    now = utcnow()
    coupon(shop, "LATER", valid_from=(now + timedelta(days=1)).isoformat())
    coupon(shop, "OVER", valid_until=(now - timedelta(seconds=1)).isoformat())
    coupon(shop, "NOW", valid_from=(now - timedelta(days=1)).isoformat(),
           valid_until=(now + timedelta(days=1)).isoformat())
    for code, expected in (("LATER", "coupon_not_valid"), ("OVER", "coupon_not_valid")):
        resp = shop.post("/orders", order_body([("MUG", 1)], coupon=code))
        assert (resp.status_code, resp.get_json()["code"]) == (422, expected)
    assert place(shop, [("MUG", 1)], coupon="NOW")["totals"]["discount"] == 200
    assert shop.patch("/coupons/now", {"active": False}).get_json()["active"] is False
    resp = shop.post("/orders", order_body([("MUG", 1)], coupon="NOW"))
    assert (resp.status_code, resp.get_json()["code"]) == (422, "coupon_inactive")
    with app.app_context():  # a refused order left nothing behind
        assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 1


def test_usage_limits_in_total_and_per_customer(shop):
    coupon(shop, "TWICE", usage_limit=2)
    coupon(shop, "ONCE", per_customer_limit=1)
    place(shop, [("MUG", 1)], coupon="TWICE", email="a@example.com")
    place(shop, [("MUG", 1)], coupon="TWICE", email="b@example.com")
    resp = shop.post("/orders", order_body([("MUG", 1)], coupon="TWICE", email="c@example.com"))
    assert (resp.status_code, resp.get_json()["code"]) == (409, "coupon_exhausted")
    assert shop.get("/coupons/TWICE").get_json()["remaining"] == 0
    place(shop, [("MUG", 1)], coupon="ONCE", email="a@example.com")
    resp = shop.post("/orders", order_body([("MUG", 1)], coupon="once", email="A@example.com"))
    assert (resp.status_code, resp.get_json()["code"]) == (409, "coupon_limit_reached")
    place(shop, [("MUG", 1)], coupon="ONCE", email="b@example.com")
    assert shop.patch("/coupons/TWICE", {"usage_limit": 1}).get_json()["code"] == "usage_limit_below_uses"


def test_a_cancelled_order_gives_its_use_back(shop, app):
    coupon(shop, "SOLO", usage_limit=1, per_customer_limit=1)
    first = place(shop, [("MUG", 1)], coupon="SOLO")
    assert shop.post("/orders", order_body([("MUG", 1)], coupon="SOLO")).status_code == 409
    cancelled = shop.post(f"/orders/{first['id']}/cancel", {"reason": "changed my mind"}).get_json()
    assert any(e["kind"] == "coupon_released" for e in cancelled["events"])
    assert shop.get("/coupons/SOLO").get_json()["used_count"] == 0
    again = place(shop, [("MUG", 1)], coupon="SOLO")  # the same customer may use it again
    assert again["totals"]["discount"] == 200
    with app.app_context():
        uses = db.session.execute(select(CouponUse).order_by(CouponUse.id)).scalars().all()
        assert [(u.order_id, u.released_at is not None) for u in uses] == [(first["id"], True), (again["id"], False)]


def test_the_coupons_setting_still_works_when_the_table_has_no_such_code(shop):
    order = place(shop, [("MUG", 1)], coupon="WELCOME10")
    assert order["totals"]["discount"] == 200 and "coupon:welcome" in order["flags"]
    resp = shop.post("/orders", order_body([("MUG", 1)], coupon="NOPE"))
    assert resp.status_code == 422 and resp.get_json()["errors"] == {"coupon": ["unknown coupon 'NOPE'"]}
    coupon(shop, "welcome10", value=50, category="table")  # the table wins over the setting
    assert "coupon:table" in place(shop, [("MUG", 1)], coupon="WELCOME10")["flags"]


def test_list_and_get_coupons_with_cursor_pages(shop):
    for code in ("A1", "A2", "A3"):
        coupon(shop, code)
    shop.patch("/coupons/A2", {"active": False})
    page = shop.get("/coupons?limit=2").get_json()
    assert [c["code"] for c in page["items"]] == ["A3", "A2"] and page["next_cursor"]
    rest = shop.get(f"/coupons?limit=2&cursor={page['next_cursor']}").get_json()
    assert [c["code"] for c in rest["items"]] == ["A1"] and rest["next_cursor"] is None
    assert [c["code"] for c in shop.get("/coupons?active=false").get_json()["items"]] == ["A2"]
    assert shop.get("/coupons/nope").status_code == 404
    assert shop.post("/coupons", {"code": "X", "kind": "percentage", "value": 5, "color": "red"}).status_code == 422


def test_32_concurrent_uses_of_a_coupon_with_10_uses_left_give_it_to_exactly_10_orders(shop, app):
    coupon(shop, "RUSH", usage_limit=15)
    for i in range(5):
        place(shop, [("MUG", 1)], coupon="RUSH", email=f"early{i}@example.com")

    def buy(i):
        return lambda client: answer(client.post("/orders", order_body([("MUG", 1)], coupon="RUSH",
                                                                       email=f"rush{i}@example.com")))

    results = together(app, shop.key, [buy(i) for i in range(32)])
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 10, 409: 22}, [body for status, body in results if status not in (201, 409)]
    assert {body["code"] for status, body in results if status == 409} == {"coupon_exhausted"}
    assert all(body["totals"]["discount"] == 200 for status, body in results if status == 201)
    with app.app_context():
        assert db.session.execute(select(Coupon.used_count)).scalar_one() == 15
        assert db.session.execute(select(func.count()).select_from(CouponUse)).scalar_one() == 15
        assert db.session.execute(select(func.count()).select_from(Order)).scalar_one() == 15
        check_stock_invariants()


def test_cli_creates_lists_and_disables_coupons(shop, app):
    result = run(app, "coupons", "create", "CLI20", "--kind", "percentage", "--value", "20", "--usage-limit", "3",
                 "--category", "cli")
    assert result.exit_code == 0, result.output
    assert "coupon CLI20 created" in result.output
    result = run(app, "coupons", "create", "cli20", "--kind", "percentage", "--value", "20")
    assert result.exit_code != 0 and "exists" in result.output
    result = run(app, "coupons", "create", "NOCUR", "--kind", "fixed_amount", "--value", "100")
    assert result.exit_code != 0 and "--currency" in result.output
    assert "coupon:cli" in place(shop, [("MUG", 1)], coupon="cli20")["flags"]
    listing = run(app, "coupons", "list")
    assert listing.exit_code == 0 and "CLI20\t20%\tcoupon:cli\t1/3 used" in listing.output
    assert run(app, "coupons", "disable", "CLI20").exit_code == 0
    assert "CLI20" not in run(app, "coupons", "list").output
    assert "disabled" in run(app, "coupons", "list", "--all").output
    assert run(app, "coupons", "disable", "NOPE").exit_code != 0
