"""Channel orders that lack something in the warehouse: no deliverable address (not rated nor shipped until
staff give it one, ``POST /orders/{id}/address``), and orders of non-stock lines only (nothing to pick or
pack; with nothing to ship, delivered once confirmed)."""

from __future__ import annotations

import pytest
from conftest import SUPPORT_ADDRESS, product, receive

from engine.domain import transitions as tx
from engine.errors import IllegalTransition
from engine.services import orders


def _channel_order(external_id, **extra):
    customer = {"email": "ann@example.com", "name": "Ann Buyer", "shipping_address": dict(SUPPORT_ADDRESS),
                **extra.pop("customer", {})}
    return {"channel": "market", "external_id": external_id, "customer": customer, "incomplete_ok": True,
            "lines": [{"sku": "MUG", "quantity": 1, "unit_price": 1000}], "payment_status": "paid", **extra}


@pytest.fixture
def mugs(api):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 5)
    return api


def _to_packed(api, order_id):
    for step, body in (("pick", {"scans": ["MUG"]}), ("confirm", {}), ("pack", {"scans": ["MUG"]})):
        resp = api.post(f"/orders/{order_id}/{step}", body)
        assert resp.status_code == 200, (step, resp.get_json())


def test_an_order_without_a_deliverable_address_is_not_shipped_until_staff_give_it_one(mugs, ctx):
    api = mugs
    order, _ = orders.place_order(_channel_order("A-1", customer={"shipping_address": None}))
    assert "review:address" in order.flags
    _to_packed(api, order.id)
    for resp in (api.get(f"/orders/{order.id}/rates"),
                 api.post(f"/orders/{order.id}/ship", {"carrier": "generic", "service": "standard"})):
        body = resp.get_json()
        assert resp.status_code == 409 and body["code"] == "address_required", body
        assert f"/orders/{order.id}/address" in body["message"]
    assert api.get(f"/orders/{order.id}").get_json()["status"] == "packed"

    # an address the country's rules refuse: 422 naming the field, nothing changes
    bad = {"name": "Wing Chan", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "123", "country": "DE"}
    resp = api.post(f"/orders/{order.id}/address", bad)
    assert resp.status_code == 422 and "postal_code" in resp.get_json()["errors"], resp.get_json()
    again = api.get(f"/orders/{order.id}").get_json()
    assert again["shipping_address"] is None and "review:address" in again["flags"]

    good = {"name": "Wing Chan", "line1": "Flat 5, 18 Harbour Road", "city": "Wan Chai", "country": "HK"}
    resp = api.post(f"/orders/{order.id}/address", good)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["shipping_address"] == good and "review:address" not in body["flags"]
    changed = [e for e in body["events"] if e["kind"] == "details_changed"]
    assert [(e["data"]["fields"], e["data"]["source"]) for e in changed] == [(["shipping_address"], "staff")]
    # the same address again records nothing
    assert api.post(f"/orders/{order.id}/address", good).status_code == 200
    events = api.get(f"/orders/{order.id}").get_json()["events"]
    assert len([e for e in events if e["kind"] == "details_changed"]) == 1

    assert api.get(f"/orders/{order.id}/rates").status_code == 200
    resp = api.post(f"/orders/{order.id}/ship", {"carrier": "generic", "service": "standard"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "shipped", resp.get_json()
    # after shipping the address is history
    resp = api.post(f"/orders/{order.id}/address", {**good, "line1": "elsewhere"})
    assert resp.status_code == 409 and resp.get_json()["code"] == "order_closed"


def test_an_address_without_a_name_keeps_the_recipients(mugs, ctx):
    order, _ = orders.place_order(_channel_order("A-2", customer={"shipping_address": {
        "name": "Sara Recipient", "line1": "Hauptstr. 1", "city": "Berlin", "country": "DE"}}))
    assert "review:address" in order.flags  # no postcode in Germany
    resp = mugs.post(f"/orders/{order.id}/address", {"line1": "Hauptstr. 1", "city": "Berlin",
                                                      "postal_code": "10115", "country": "DE"})
    assert resp.status_code == 200
    assert resp.get_json()["shipping_address"]["name"] == "Sara Recipient"
    assert mugs.post("/orders/999999/address", {"line1": "x", "country": "HK"}).status_code == 404


def test_a_gift_card_order_is_confirmed_from_paid_and_delivered_without_picking_or_shipping(mugs, ctx):
    api = mugs
    order, _ = orders.place_order(_channel_order("G-1", lines=[], currency="EUR", customer={"shipping_address": None},
                                                 non_stock_lines=[{"kind": "gift_card", "title": "Gift card 50",
                                                                   "quantity": 1, "unit_price": 5000}]))
    assert order.status == "paid" and order.fulfilment == tx.DIGITAL
    assert "review:address" not in order.flags  # nothing to ship: no address to review
    body = api.get(f"/orders/{order.id}").get_json()
    assert body["allowed_actions"] == ["hold", "confirm", "cancel"]
    resp = api.post(f"/orders/{order.id}/pick", {"scans": ["MUG"]})
    assert resp.status_code == 409 and "confirm" in resp.get_json()["message"]
    resp = api.post(f"/orders/{order.id}/confirm")
    assert resp.status_code == 200 and resp.get_json()["status"] == "confirmed"
    assert resp.get_json()["allowed_actions"] == ["deliver", "cancel"]
    assert api.post(f"/orders/{order.id}/ship", {"carrier": "generic", "service": "standard"}).status_code == 409
    resp = api.post(f"/orders/{order.id}/deliver")
    assert resp.status_code == 200 and resp.get_json()["status"] in ("delivered", "completed")
    assert api.get("/stock/MUG").get_json()["reserved"] == 0


def test_non_stock_lines_that_need_shipping_skip_picking_and_packing_but_ship(mugs, ctx):
    api = mugs
    order, _ = orders.place_order(_channel_order("G-2", lines=[], currency="EUR", non_stock_lines=[
        {"kind": "custom", "title": "Engraved plate", "quantity": 1, "unit_price": 2000, "requires_shipping": True}]))
    assert order.fulfilment == tx.UNSTOCKED
    assert api.post(f"/orders/{order.id}/confirm").get_json()["allowed_actions"] == ["ship", "cancel"]
    resp = api.post(f"/orders/{order.id}/ship", {"carrier": "generic", "service": "standard"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "shipped", resp.get_json()


def test_the_tables_of_orders_without_stock_lines():
    assert tx.fulfilment(1, [{"requires_shipping": False}]) == tx.GOODS
    assert tx.fulfilment(0, [{"requires_shipping": True}]) == tx.UNSTOCKED
    assert tx.fulfilment(0, [{"requires_shipping": False}]) == tx.DIGITAL
    assert tx.check("paid", "confirm", kind=tx.DIGITAL) == ("confirmed",)
    assert tx.check("confirmed", "deliver", kind=tx.DIGITAL) == ("delivered",)
    assert tx.check("confirmed", "ship", kind=tx.UNSTOCKED) == ("shipped",)
    for kind, status, action in ((tx.DIGITAL, "paid", "pick"), (tx.DIGITAL, "confirmed", "pack"),
                                 (tx.DIGITAL, "confirmed", "ship"), (tx.GOODS, "paid", "confirm"),
                                 (tx.GOODS, "confirmed", "deliver"), (tx.UNSTOCKED, "confirmed", "pack")):
        with pytest.raises(IllegalTransition):
            tx.check(status, action, kind=kind)
