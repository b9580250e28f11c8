"""Reorder rules (issue #11): stock_low once per crossing, again after stock rose above the point, one
draft line per supplier also under concurrent orders, max levels, location rules, alerts and recipients."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from conftest import order_body, place, product, receive
from invariants import check_stock_invariants
from sqlalchemy import func, select
from test_concurrency import answer, together

from engine import hookimpl
from engine import outbox as stage_events
from engine.db import db
from engine.models import PurchaseOrder, PurchaseOrderLine, ReorderRule, StockAlert
from engine.services import auth


class StockHooks:
    """Records stock_low and purchase_order_created as plugins receive them (after the commit)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    @hookimpl
    def stock_low(self, product, available, event):
        with self.lock:
            self.calls.append(("stock_low", product.sku, available, dict(event["payload"])))

    @hookimpl
    def purchase_order_created(self, purchase_order, event):
        with self.lock:
            self.calls.append(("purchase_order_created", purchase_order.number, purchase_order.product.sku,
                               dict(event["payload"])))


@pytest.fixture
def hooks():
    return StockHooks()


@pytest.fixture
def app_config(hooks):
    return {"EXTRA_PLUGINS": [("stock_hooks", hooks)], "WAREHOUSE_EMAIL": "stock@shop.example, ops@shop.example"}


def outbox(app, hook):
    with app.app_context():
        rows = [dict(e.payload) for e in stage_events.events(hook=hook)]
        db.session.rollback()
        return rows


def drafts(app):
    with app.app_context():
        rows = [(po.supplier_id, sorted((ln.product.sku, ln.quantity) for ln in po.lines)) for po in
                db.session.execute(select(PurchaseOrder).where(PurchaseOrder.status == "draft")
                                   .order_by(PurchaseOrder.id)).unique().scalars()]
        db.session.rollback()
        return rows


def supplier_id(api, name="Acme"):
    resp = api.post("/suppliers", {"name": name})
    assert resp.status_code == 201
    return resp.get_json()["id"]


def put(api, path, body):
    return api.client.put("/api/v1" + path, json=body, headers={"Authorization": f"Bearer {api.key}"})


def put_rules(api, sku, rules, expect=200):
    resp = put(api, f"/products/{sku}/reorder-rules", {"rules": rules})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def cancel(api, order):
    resp = api.post(f"/orders/{order['id']}/cancel", {"reason": "changed mind"})
    assert resp.status_code == 200, resp.get_json()


def test_the_product_wide_rule_is_the_products_reorder_settings(api, app):
    product(api, "MUG", price=1290, reorder_point=3, reorder_quantity=10)
    rules = api.get("/products/MUG/reorder-rules").get_json()
    assert rules["rules"] == [{"id": None, "location": None, "reorder_point": 3, "reorder_quantity": 10,
                               "max_level": None, "supplier_id": None, "lead_time_days": None, "state": "above",
                               "crossed_at": None}]
    acme = supplier_id(api)
    receive(api, "MUG", 2, location="BACK")
    out = put_rules(api, "MUG", [{"location": None, "reorder_point": 5, "reorder_quantity": 20, "supplier_id": acme,
                                  "lead_time_days": 3},
                                 {"location": "BACK", "reorder_point": 2, "max_level": 8}])
    wide, back = out["rules"]
    assert (wide["reorder_point"], wide["supplier_id"], back["location"], back["max_level"]) == (5, acme, "BACK", 8)
    assert back["state"] == "below"  # already at its point: no alert for a standing shortfall, the next crossing fires
    mug = api.get("/products/MUG").get_json()
    assert (mug["reorder_point"], mug["reorder_quantity"]) == (5, 20)
    api.patch("/products/MUG", {"reorder_point": 4})
    assert api.get("/products/MUG/reorder-rules").get_json()["rules"][0]["reorder_point"] == 4
    assert outbox(app, "stock_low") == []


@pytest.mark.parametrize("rules, field, text", [
    ([{"location": "NOWHERE", "reorder_point": 1}], "location", "unknown location"),
    ([{"reorder_point": 2, "reorder_quantity": 5, "max_level": 9}], "max_level", "not both"),
    ([{"reorder_point": 5, "max_level": 5}], "max_level", "above reorder_point"),
    ([{"reorder_point": 1, "supplier_id": 999}], "supplier_id", "no supplier"),
    ([{"reorder_point": 1}, {"location": None, "reorder_point": 2}], "location", "two rules"),
    ([{"reorder_point": -1}], "reorder_point", ""),
    ([{"reorder_point": 1, "colour": "red"}], "colour", ""),
])
def test_bad_rules_are_422s_and_change_nothing(api, app, rules, field, text):
    product(api, "MUG", price=1290, reorder_point=3, reorder_quantity=10)
    resp = put(api, "/products/MUG/reorder-rules", {"rules": rules})
    body = resp.get_json()
    assert resp.status_code == 422 and field in str(body["errors"]) and text in body["message"] + str(body), body
    assert api.get("/products/MUG").get_json()["reorder_point"] == 3
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ReorderRule)).scalar_one() == 0
        db.session.rollback()
    assert api.get("/products/NOPE/reorder-rules").status_code == 404


def test_stock_low_fires_once_per_crossing_and_again_after_stock_rose_above(api, app, hooks):
    with app.app_context():
        auth.create_user("wh@shop.example", "warehouse", "a long password 1")
        auth.create_user("acct@shop.example", "accounting", "a long password 2")
    product(api, "PEN", price=150, reorder_point=3, reorder_quantity=50)
    receive(api, "PEN", 6)
    place(api, [("PEN", 2)])  # 4: above
    crossing = place(api, [("PEN", 1)])  # 3: crossed
    place(api, [("PEN", 1)])  # 2: still below, no new alert
    assert [e["available"] for e in outbox(app, "stock_low")] == [3]
    assert drafts(app) == [(None, [("PEN", 50)])]
    cancel(api, crossing)  # back to 3: not above the point, still below
    place(api, [("PEN", 1)])
    assert len(outbox(app, "stock_low")) == 1
    receive(api, "PEN", 5)  # 7: above again
    place(api, [("PEN", 4)])  # 3: a new crossing
    events = outbox(app, "stock_low")
    assert [e["available"] for e in events] == [3, 3]
    assert drafts(app) == [(None, [("PEN", 100)])]  # the open draft got the larger quantity, no second draft
    assert len(outbox(app, "purchase_order_created")) == 1
    # a cancel that lifts stock above the point resets the rule too
    big = place(api, [("PEN", 2)])  # 1
    cancel(api, big)  # 3... not above
    receive(api, "PEN", 1)  # 4: above
    place(api, [("PEN", 1)])  # 3: third crossing
    assert len(outbox(app, "stock_low")) == 3
    recipients = ["wh@shop.example", "stock@shop.example", "ops@shop.example"]
    assert all(e["recipients"] == recipients and e["sku"] == "PEN" and e["location"] is None for e in events)
    alerts = api.get("/stock/alerts?sku=PEN").get_json()
    assert [(a["available"], a["reorder_point"], a["recipients"]) for a in alerts["items"]] == \
        [(3, 3, recipients)] * 3
    assert alerts["items"][-1]["purchase_order_id"] == api.get("/purchase-orders?status=draft").get_json()[
        "items"][0]["id"]
    assert {c[0] for c in hooks.calls} == {"stock_low", "purchase_order_created"}
    delivered = [c for c in hooks.calls if c[0] == "stock_low"]
    assert [(sku, available, payload["recipients"]) for _, sku, available, payload in delivered] == \
        [("PEN", 3, recipients)] * 3
    with app.app_context():
        check_stock_invariants()


def test_32_concurrent_orders_crossing_one_reorder_point_fire_stock_low_once_and_draft_one_line(api, app, hooks):
    product(api, "MUG", price=1290, reorder_point=20, reorder_quantity=30)
    receive(api, "MUG", 40)

    def buy(i):
        return lambda client: answer(client.post("/orders", order_body([("MUG", 1)], email=f"c{i}@example.com")))

    results = together(app, api.key, [buy(i) for i in range(32)])
    assert Counter(status for status, _ in results) == {201: 32}
    events = outbox(app, "stock_low")
    assert len(events) == 1 and events[0]["available"] == 20
    assert drafts(app) == [(None, [("MUG", 30)])]
    assert len(outbox(app, "purchase_order_created")) == 1
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(StockAlert)).scalar_one() == 1
        assert db.session.execute(select(func.count()).select_from(PurchaseOrderLine)).scalar_one() == 1
        check_stock_invariants()
    assert [c[:3] for c in hooks.calls if c[0] == "stock_low"] == [("stock_low", "MUG", 20)]


def test_concurrent_crossings_of_two_products_of_one_supplier_share_one_draft(api, app):
    acme = supplier_id(api)
    for sku in ("MUG", "CAP"):
        product(api, sku, price=990)
        receive(api, sku, 20)
        put_rules(api, sku, [{"reorder_point": 10, "reorder_quantity": 25, "supplier_id": acme}])

    def buy(i, sku):
        return lambda client: answer(client.post("/orders", order_body([(sku, 1)], email=f"c{i}@example.com")))

    results = together(app, api.key, [buy(i, ("MUG", "CAP")[i % 2]) for i in range(24)])
    assert Counter(status for status, _ in results) == {201: 24}
    assert sorted(e["sku"] for e in outbox(app, "stock_low")) == ["CAP", "MUG"]
    assert drafts(app) == [(acme, [("CAP", 25), ("MUG", 25)])]  # one draft per supplier, a line per product
    created = outbox(app, "purchase_order_created")
    assert len(created) == 1 and created[0]["supplier_id"] == acme


def test_max_level_orders_up_to_it_less_what_open_purchase_orders_bring(api, app):
    acme = supplier_id(api)
    product(api, "INK", price=500)
    receive(api, "INK", 10)
    ordered = api.post("/purchase-orders", {"supplier_id": acme, "lines": [{"sku": "INK", "quantity": 6}]}).get_json()
    assert api.post(f"/purchase-orders/{ordered['id']}/order").status_code == 200
    put_rules(api, "INK", [{"reorder_point": 5, "max_level": 30, "supplier_id": acme}])
    place(api, [("INK", 6)])  # 4 available: 30 - 4 - 6 expected = 20
    assert drafts(app) == [(acme, [("INK", 20)])]
    assert outbox(app, "stock_low")[0]["reorder_point"] == 5


def test_a_location_rule_watches_its_location_only(api, app):
    product(api, "TEE", price=1500)
    receive(api, "TEE", 10)  # MAIN
    receive(api, "TEE", 4, location="STORE")
    put_rules(api, "TEE", [{"location": "STORE", "reorder_point": 2, "reorder_quantity": 6}])
    place(api, [("TEE", 8)])  # allocation takes MAIN's units first (most available): STORE keeps 4
    assert outbox(app, "stock_low") == []
    place(api, [("TEE", 4)])  # MAIN 2 and STORE 4 -> the biggest first: STORE falls to 2 at most
    events = outbox(app, "stock_low")
    with app.app_context():
        store = [(a.location.code, a.available) for a in db.session.execute(select(StockAlert)).unique().scalars()]
        db.session.rollback()
    assert [e["location"] for e in events] == ["STORE"] * len(events) and len(events) == 1
    assert store == [("STORE", 0)]
    assert api.get("/stock/alerts").get_json()["items"][0]["location"] == "STORE"
