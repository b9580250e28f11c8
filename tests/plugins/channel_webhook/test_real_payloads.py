"""Real-shaped Shopify and WooCommerce payloads (written from the platforms' REST order documentation):
multi-currency, tax-inclusive, free shipping, no postcode, no e-mail, gift cards, billing != shipping,
the topics after creation and wrapped bodies; each signed as the platform signs, with replays and tampering."""

from __future__ import annotations

import copy

import pytest

from .support import as_body, post_channel, sample, shopify_headers, woo_headers
from .test_inbound import SHOPIFY_SECRET, WOO_SECRET, deliveries, make_channel, shop  # noqa: F401

# a Shopify shop in EUR, a buyer paying CHF, prices including 19% VAT, a free-shipping code, a gift card,
# a gift shipped to someone in Hong Kong (no postcode there), no e-mail (point of sale); bench/ingest_webhooks.py
# posts the same document
SHOPIFY_ORDER = sample("shopify_order_multicurrency.json")


@pytest.fixture
def eur_shop(shop):  # noqa: F811
    make_channel(shop, "shop-eu", "shopify", SHOPIFY_SECRET)
    make_channel(shop, "woo", "woocommerce", WOO_SECRET)
    return shop


def send_shopify(api, payload, topic="orders/create", webhook_id=None):
    body = as_body(payload)
    headers = shopify_headers(SHOPIFY_SECRET, body, webhook_id, topic=topic)
    return post_channel(api.client, "shop-eu", body, headers), body, headers


def test_shopify_multi_currency_tax_inclusive_free_shipping_gift_card_no_email_no_postcode(eur_shop):
    api = eur_shop
    resp, body, headers = send_shopify(api, SHOPIFY_ORDER)
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in order["lines"]] == [("MUG", 2, 4700)]
    assert [(x["kind"], x["title"], x["total"]) for x in order["non_stock_lines"]] == [("gift_card", "Gift card", 5000)]
    totals = order["totals"]
    # the free-shipping code comes off the shipping once: not off the lines as well
    assert (totals["currency"], totals["subtotal"], totals["discount"], totals["shipping"], totals["tax"],
            totals["total"], totals["paid"]) == ("EUR", 14400, 0, 0, 1517, 14400, 14400)
    assert order["tax"] == {"status": "inclusive", "prices_include_tax": True,
                            "lines": [{"title": "MwSt", "rate": "0.19", "amount": 1517}]}
    assert order["presentment"] == {"currency": "CHF", "subtotal": 13824, "discount": 470, "shipping": 0,
                                    "tax": 1456, "total": 13824}
    assert order["customer"]["email"] is None and order["customer"]["name"] == "Mia Buyer"
    assert order["shipping_address"] == {"name": "Wing Chan", "line1": "Flat 5, 18 Harbour Road",
                                         "city": "Wan Chai", "country": "HK"}
    assert order["billing_address"]["postal_code"] == "8001"
    assert order["flags"] == ["no_email"]  # Hong Kong has no postcodes: nothing to review
    assert api.get("/stock/MUG").get_json()["reserved"] == 2
    # replayed: the same answer, no second order; tampered: 401
    again = post_channel(api.client, "shop-eu", body, headers)
    assert again.status_code == 201 and again.headers.get("Webhook-Replayed") == "true"
    tampered = body.replace(b'"144.00"', b'"1.00"', 1)
    assert post_channel(api.client, "shop-eu", tampered, headers).status_code == 401
    assert len(api.get("/orders?channel=shop-eu").get_json()["items"]) == 1


def test_shopify_total_that_the_lines_do_not_explain_is_kept_and_flagged(eur_shop):
    payload = copy.deepcopy(SHOPIFY_ORDER)
    payload["total_price"] = "150.00"
    resp, _, _ = send_shopify(eur_shop, payload)
    order = eur_shop.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["totals"]["total"] == 15000 and "review:totals" in order["flags"]
    event = next(e for e in order["events"] if e["kind"] == "totals_differ")
    assert event["data"] == {"channel_total": 15000, "lines_total": 14400}


def test_shopify_updated_cancelled_and_refunds_change_the_one_order(eur_shop):
    api = eur_shop
    resp, _, _ = send_shopify(api, SHOPIFY_ORDER)
    order_id = resp.get_json()["id"]
    resp, body, headers = send_shopify(api, {**SHOPIFY_ORDER, "note": "ring twice"}, topic="orders/updated")
    assert resp.status_code == 200 and resp.get_json()["id"] == order_id
    refund = {"id": 909, "order_id": SHOPIFY_ORDER["id"], "note": "broken mug",
              "transactions": [{"id": 1, "kind": "refund", "status": "success", "amount": "47.00",
                                "currency": "EUR"}]}
    resp, body, headers = send_shopify(api, refund, topic="refunds/create")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "refunded", resp.get_json()
    assert post_channel(api.client, "shop-eu", body, headers).headers.get("Webhook-Replayed") == "true"
    resp, _, _ = send_shopify(api, refund, topic="refunds/create")  # a new delivery of the same refund
    assert resp.status_code == 200
    order = api.get(f"/orders/{order_id}").get_json()
    assert order["totals"]["refunded"] == 4700 and [r["amount"] for r in order["refunds"]] == [4700]
    tampered = body.replace(b'"47.00"', b'"99.00"')
    assert post_channel(api.client, "shop-eu", tampered, headers).status_code == 401
    cancelled = {**SHOPIFY_ORDER, "cancelled_at": "2026-01-05T10:00:00+01:00", "cancel_reason": "customer"}
    resp, body, headers = send_shopify(api, cancelled, topic="orders/cancelled")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    resp, _, _ = send_shopify(api, cancelled, topic="orders/cancelled")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unchanged"
    assert api.get("/stock/MUG").get_json()["reserved"] == 0
    assert len(api.get("/orders?channel=shop-eu").get_json()["items"]) == 1
    # an order cancelled on Shopify before it reached us creates nothing
    resp, _, _ = send_shopify(api, {**cancelled, "id": 42}, topic="orders/create")
    assert resp.status_code == 200 and resp.get_json()["ignored"] is True
    resp, _, _ = send_shopify(api, {**cancelled, "id": 43}, topic="orders/cancelled")
    assert resp.status_code == 200 and resp.get_json()["ignored"] is True
    assert len(api.get("/orders?channel=shop-eu").get_json()["items"]) == 1


def test_shopify_wrapped_rest_body_is_understood(eur_shop):
    resp, _, _ = send_shopify(eur_shop, {"order": SHOPIFY_ORDER})
    assert resp.status_code == 201 and resp.get_json()["external_id"] == str(SHOPIFY_ORDER["id"])


# WooCommerce (REST API v3 order): prices including tax, a fee line, a custom line without product,
# the UAE (no postcodes), billing != shipping, no e-mail
WOO_ORDER = {
    "id": 7345, "status": "processing", "currency": "EUR", "prices_include_tax": True, "customer_id": 0,
    "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": "5.00", "shipping_tax": "0.95",
    "cart_tax": "15.01", "total": "99.96", "total_tax": "15.96", "transaction_id": "pi_123",
    "billing": {"first_name": "Omar", "last_name": "Buyer", "address_1": "Rue 1", "city": "Paris",
                "postcode": "75001", "country": "FR", "email": "", "phone": ""},
    "shipping": {"first_name": "Sara", "last_name": "Recipient", "address_1": "Sheikh Zayed Road 1",
                 "city": "Dubai", "postcode": "", "country": "AE"},
    "line_items": [
        {"id": 1, "name": "Mug", "product_id": 5, "variation_id": 0, "quantity": 3, "sku": "MUG",
         "subtotal": "64.71", "subtotal_tax": "12.30", "total": "64.71", "total_tax": "12.30"},
        {"id": 2, "name": "Engraving", "product_id": 0, "variation_id": 0, "quantity": 1, "sku": "",
         "subtotal": "10.00", "subtotal_tax": "1.90", "total": "10.00", "total_tax": "1.90"}],
    "fee_lines": [{"id": 3, "name": "Gift wrap", "total": "4.29", "total_tax": "0.81"}],
    "tax_lines": [{"id": 9, "rate_code": "DE-MWST-1", "label": "MwSt", "rate_percent": 19, "compound": False,
                   "tax_total": "15.01", "shipping_tax_total": "0.95"}],
    "shipping_lines": [{"method_title": "Flat rate", "total": "5.00", "total_tax": "0.95"}],
}


def send_woo(api, payload, topic="order.created", delivery_id=None):
    body = as_body(payload)
    headers = woo_headers(WOO_SECRET, body, delivery_id, topic=topic)
    return post_channel(api.client, "woo", body, headers), body, headers


def test_woocommerce_tax_inclusive_fee_custom_line_uae_no_email(eur_shop):
    api = eur_shop
    resp, body, headers = send_woo(api, WOO_ORDER)
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in order["lines"]] == [("MUG", 3, 2567)]
    assert sorted((x["kind"], x["title"], x["total"]) for x in order["non_stock_lines"]) == [
        ("custom", "Engraving", 1190), ("fee", "Gift wrap", 510)]
    totals = order["totals"]
    assert (totals["subtotal"], totals["discount"], totals["shipping"], totals["tax"], totals["total"]) == (
        9401, 0, 595, 1596, 9996)
    assert order["flags"] == ["no_email"]  # the UAE has no postcodes
    assert order["tax"]["status"] == "inclusive"
    # the line holds the shipping's tax too (0.95 of it), which the books tax at the shipping's rate
    assert order["tax"]["lines"] == [{"title": "MwSt", "rate": "0.19", "amount": 1596, "shipping_amount": 95}]
    assert order["customer"]["name"] == "Omar Buyer" and order["shipping_address"]["name"] == "Sara Recipient"
    assert order["shipping_address"]["country"] == "AE" and order["billing_address"]["country"] == "FR"
    assert post_channel(api.client, "woo", body, headers).headers.get("Webhook-Replayed") == "true"
    assert post_channel(api.client, "woo", body + b" ", headers).status_code == 401


def test_woocommerce_updated_deleted_and_the_legacy_wrapper(eur_shop):
    api = eur_shop
    resp, _, _ = send_woo(api, WOO_ORDER)
    order_id = resp.get_json()["id"]
    resp, body, headers = send_woo(api, {**WOO_ORDER, "status": "cancelled"}, topic="order.updated")
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    assert post_channel(api.client, "woo", body, headers).headers.get("Webhook-Replayed") == "true"
    assert post_channel(api.client, "woo", body.replace(b"cancelled", b"completed"), headers).status_code == 401
    resp, _, _ = send_woo(api, {"id": WOO_ORDER["id"]}, topic="order.deleted")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unchanged"
    assert len(api.get("/orders?channel=woo").get_json()["items"]) == 1 and order_id
    resp, _, _ = send_woo(api, {"order": {**WOO_ORDER, "id": 8000}})
    assert resp.status_code == 422 and "legacy" in resp.get_json()["message"]
    [refused] = deliveries(api, "woo", outcome="rejected")
    assert refused["external_id"] == "8000" and "legacy" in refused["reason"]


def _kinds(api, order_id, kind):
    return [e for e in api.get(f"/orders/{order_id}").get_json()["events"] if e["kind"] == kind]


def test_shopify_orders_updated_changes_the_address_email_phone_and_note_before_shipping_once(eur_shop):
    api = eur_shop
    resp, _, _ = send_shopify(api, SHOPIFY_ORDER)
    order_id = resp.get_json()["id"]
    moved = {"first_name": "Wing", "last_name": "Chan", "name": "Wing Chan", "address1": "Hauptstr. 1",
             "city": "Berlin", "zip": "10115", "country_code": "DE", "phone": "+49 30 555"}
    updated = {**SHOPIFY_ORDER, "email": "Mia@Example.com", "phone": "+41 44 555 01 01", "shipping_address": moved,
               "note": "leave it at the door"}
    resp, body, headers = send_shopify(api, updated, topic="orders/updated")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "updated: shipping_address, email, phone, note"
    order = api.get(f"/orders/{order_id}").get_json()
    assert order["shipping_address"]["city"] == "Berlin" and order["shipping_address"]["name"] == "Wing Chan"
    assert order["customer"]["email"] == "mia@example.com" and order["customer"]["phone"] == "+41 44 555 01 01"
    assert "no_email" not in order["flags"]
    assert [e["message"] for e in _kinds(api, order_id, "customer_note")] == ["leave it at the door"]
    # the same update again (a replay, then a new delivery of the same state): nothing more changes
    assert post_channel(api.client, "shop-eu", body, headers).headers.get("Webhook-Replayed") == "true"
    resp, _, _ = send_shopify(api, updated, topic="orders/updated")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unchanged"
    assert len(_kinds(api, order_id, "details_changed")) == 1 and len(_kinds(api, order_id, "customer_note")) == 1
    # an address the country's rules refuse is kept and flagged, as at placement; a tampered update is 401
    resp, _, _ = send_shopify(api, {**updated, "shipping_address": {**moved, "zip": "1"}}, topic="orders/updated")
    assert resp.status_code == 200 and "review:address" in api.get(f"/orders/{order_id}").get_json()["flags"]
    resp, _, _ = send_shopify(api, updated, topic="orders/updated")
    assert "review:address" not in api.get(f"/orders/{order_id}").get_json()["flags"]
    tampered = body.replace(b"Hauptstr. 1", b"Elsewhere 9")
    assert post_channel(api.client, "shop-eu", tampered, headers).status_code == 401
    # once shipped, an update changes nothing
    for step, payload in (("pick", {"scans": ["MUG", "MUG"]}), ("confirm", {}), ("pack", {"scans": ["MUG", "MUG"]}),
                          ("ship", {"carrier": "generic", "service": "standard"})):
        assert api.post(f"/orders/{order_id}/{step}", payload).status_code == 200, step
    resp, _, _ = send_shopify(api, {**updated, "shipping_address": {**moved, "city": "Hamburg", "zip": "20095"}},
                              topic="orders/updated")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unchanged"
    assert api.get(f"/orders/{order_id}").get_json()["shipping_address"]["city"] == "Berlin"


@pytest.mark.parametrize("listed", [True, False], ids=["refunds-listed", "status-only"])
def test_woocommerce_order_updated_refunded_records_the_refund_once(eur_shop, listed):
    api = eur_shop
    resp, _, _ = send_woo(api, WOO_ORDER)
    order_id = resp.get_json()["id"]
    refunded = {**WOO_ORDER, "status": "refunded"}
    if listed:
        refunded["refunds"] = [{"id": 726, "reason": "damaged", "total": "-99.96"}]
    resp, body, headers = send_woo(api, refunded, topic="order.updated")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "refunded", resp.get_json()
    assert post_channel(api.client, "woo", body, headers).headers.get("Webhook-Replayed") == "true"
    resp, _, _ = send_woo(api, refunded, topic="order.updated")  # delivered again with a new delivery id
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unchanged"
    order = api.get(f"/orders/{order_id}").get_json()
    assert order["totals"]["refunded"] == 9996 and [r["amount"] for r in order["refunds"]] == [9996]
    assert order["status"] != "cancelled"


def test_woocommerce_partial_refunds_listed_in_updates_are_recorded_once_each(eur_shop):
    api = eur_shop
    resp, _, _ = send_woo(api, WOO_ORDER)
    order_id = resp.get_json()["id"]
    first = {**WOO_ORDER, "refunds": [{"id": 801, "reason": "one mug", "total": "-25.67"}]}
    assert send_woo(api, first, topic="order.updated")[0].get_json()["outcome"] == "refunded"
    both = {**WOO_ORDER, "refunds": [{"id": 802, "reason": "", "total": "-5.00"}, *first["refunds"]]}
    assert send_woo(api, both, topic="order.updated")[0].get_json()["outcome"] == "refunded"
    assert send_woo(api, both, topic="order.updated")[0].get_json()["outcome"] == "unchanged"
    order = api.get(f"/orders/{order_id}").get_json()
    assert sorted(r["amount"] for r in order["refunds"]) == [500, 2567] and order["totals"]["refunded"] == 3067
