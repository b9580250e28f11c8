"""Inbound channel orders: signatures, the platforms' payloads, exactly-once, refusals kept for staff."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select

from engine.db import db
from engine.models import InboxRecord, Order

from .support import (
    as_body,
    post_channel,
    sample,
    shopify_headers,
    standard_headers,
    woo_headers,
)

SHOPIFY_SECRET = "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"
WOO_SECRET = "wc-webhook-secret-7Yq2!x"
GENERIC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_channel(api, name, fmt, secret=None, expect=201, **extra):
    body = {"name": name, "format": fmt, **extra}
    if secret is not None:
        body["secret"] = secret
    resp = api.post("/channels", body)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


@pytest.fixture
def shop(api):
    """USD products for the platforms' samples, and EUR ones for the generic channel."""
    for sku, price in (("IPOD2008GREEN", 19900), ("CASE-BLUE", 9950), ("WOO-SINGLE", 300), ("Bar3", 1200),
                       ("STICKERS", 333)):
        product(api, sku, price=price, currency="USD")
        receive(api, sku, 10)
    product(api, "MUG", price=1290)
    receive(api, "MUG", 10)
    return api


@pytest.fixture
def shopify(shop):
    make_channel(shop, "shop-us", "shopify", SHOPIFY_SECRET, sku_map={"457924702": "CASE-BLUE"})
    return shop


@pytest.fixture
def woo(shop):
    make_channel(shop, "woo", "woocommerce", WOO_SECRET, sku_map={"93": "WOO-SINGLE"})
    return shop


@pytest.fixture
def generic(shop):
    make_channel(shop, "site", "generic", GENERIC_SECRET)
    return shop


def generic_order(external_id="A-1001", **extra):
    return {"external_id": external_id,
            "customer": {"email": "ann@example.com", "name": "Ann Example", "phone": "+49 30 1234567",
                         "shipping_address": {"line1": "Sample Street 12", "city": "Berlin", "postal_code": "10115",
                                              "country": "DE"}},
            "lines": [{"sku": "MUG", "quantity": 2, "unit_price": 1190}], "shipping_total": 495, **extra}


def counts(app) -> dict:
    with app.app_context():
        from plugins.channel_webhook.models import InboundDelivery

        result = {"orders": db.session.execute(select(func.count()).select_from(Order)).scalar_one(),
                  "inbox": db.session.execute(select(func.count()).select_from(InboxRecord)).scalar_one(),
                  "inbound": db.session.execute(select(func.count()).select_from(InboundDelivery)).scalar_one()}
        db.session.remove()
    return result


def deliveries(api, name, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    resp = api.get(f"/channels/{name}/deliveries" + (f"?{qs}" if qs else ""))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


# ----------------------------------------------------------------- the platforms' payloads


def test_shopify_orders_create_is_placed_paid_with_the_prices_charged(shopify, app):
    api = shopify
    body = as_body(sample("shopify_orders_create.json"))
    resp = post_channel(api.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    answer = resp.get_json()
    assert answer["channel"] == "shop-us" and answer["external_id"] == "820982911946154508"

    order = api.get(f"/orders/{answer['id']}").get_json()
    assert order["status"] == "paid" and order["payment_status"] == "paid"
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in order["lines"]] == [
        ("IPOD2008GREEN", 1, 19900), ("CASE-BLUE", 2, 9950)]  # the variant id went through the sku map
    totals = order["totals"]
    assert (totals["subtotal"], totals["discount"], totals["shipping"], totals["tax"]) == (39800, 1000, 1000, 2910)
    assert totals["total"] == 42710 == totals["paid"]  # Shopify's total_price "427.10"
    assert totals["currency"] == "USD"
    # the buyer is the customer (Shopify's customer); the shipment goes to the recipient of the shipping address
    assert order["customer"]["email"] == "jon@example.com" and order["customer"]["name"] == "Bob Norman"
    assert order["shipping_address"]["name"] == "Steve Shipper"
    assert order["billing_address"]["postal_code"] == "40202" and order["billing_address"]["name"] == "Bob Norman"
    address = order["shipping_address"]
    assert (address["line1"], address["line2"], address["city"], address["postal_code"], address["country"],
            address["region"], address["company"]) == ("123 Shipping Street", "Suite 4", "Shippington", "40003",
                                                       "US", "KY", "Shipping Company")
    assert any(e["kind"] == "customer_note" and "back door" in e["message"] for e in order["events"])
    assert [p["reference"] for p in order["payments"]] == ["shop-us:820982911946154508"]
    assert stock_of(api, "CASE-BLUE")["reserved"] == 2

    [logged] = deliveries(api, "shop-us")
    assert logged["outcome"] == "created" and logged["order_id"] == answer["id"] and logged["status_code"] == 201
    assert logged["topic"] == "orders/create"
    assert logged["extra"]["billing_address"]["postal_code"] == "40202"
    stored = json.dumps(logged["payload"])
    assert logged["payload"]["payment_details"] == "[redacted]"
    assert "424242" not in stored and "4242" not in stored
    assert logged["payload"]["checkout_token"] == "[redacted]"
    assert logged["payload"]["line_items"][0]["sku"] == "IPOD2008GREEN"  # the rest is kept for audit


def test_woocommerce_ping_then_order_created(woo, app):
    api = woo
    ping = api.client.post("/api/v1/channels/woo/orders", data=b"webhook_id=12",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "X-WC-Webhook-Source": "https://shop.example.com/"})
    assert ping.status_code == 200
    assert counts(app) == {"orders": 0, "inbox": 0, "inbound": 0}

    body = as_body(sample("woocommerce_order_created.json"))
    resp = post_channel(api.client, "woo", body, woo_headers(WOO_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["external_id"] == "727" and order["status"] == "paid"
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in order["lines"]] == [
        ("WOO-SINGLE", 2, 300), ("Bar3", 1, 1200), ("STICKERS", 1, 334), ("STICKERS", 2, 333)]
    totals = order["totals"]
    assert (totals["subtotal"], totals["discount"], totals["shipping"], totals["tax"], totals["total"]) == (
        2800, 200, 1000, 195, 3795)  # WooCommerce's total "37.95"
    assert order["payments"][0]["reference"] == "ch_3PGJ2aLkdIwHu7ix0Xe1AbCd"
    assert order["shipping_address"]["postal_code"] == "94103" and order["customer"]["name"] == "John Doe"
    assert any(e["kind"] == "customer_note" and e["message"] == "Ring twice, please" for e in order["events"])
    assert stock_of(api, "STICKERS")["reserved"] == 3
    [logged] = deliveries(api, "woo")
    assert logged["payload"]["order_key"] == "[redacted]"


def test_woocommerce_statuses_decide_paid_unpaid_or_nothing(woo, app):
    api = woo
    for external_id, status, expected in ((801, "pending", "placed"), (802, "on-hold", "placed"),
                                          (803, "completed", "paid")):
        payload = {**sample("woocommerce_order_created.json"), "id": external_id, "status": status}
        body = as_body(payload)
        resp = post_channel(api.client, "woo", body, woo_headers(WOO_SECRET, body))
        assert resp.status_code == 201, resp.get_json()
        assert api.get(f"/orders/{resp.get_json()['id']}").get_json()["status"] == expected
    body = as_body({**sample("woocommerce_order_created.json"), "id": 804, "status": "failed"})
    resp = post_channel(api.client, "woo", body, woo_headers(WOO_SECRET, body))
    assert resp.status_code == 200 and resp.get_json()["ignored"] is True
    assert counts(app)["orders"] == 3
    assert deliveries(api, "woo", outcome="ignored")[0]["external_id"] == "804"


def test_generic_channel_signed_with_standard_webhooks(generic, app):
    api = generic
    body = as_body({"type": "order.created", "timestamp": datetime.now(UTC).isoformat(),
                    "data": generic_order(note="leave at reception; card 4111-1111-1111-1111", payment_status="paid",
                                          discount_total=100)})
    resp = post_channel(api.client, "site", body, standard_headers(GENERIC_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["channel"] == "site" and order["external_id"] == "A-1001" and order["status"] == "paid"
    assert order["lines"][0]["unit_price"] == 1190 and order["totals"]["total"] == 2 * 1190 - 100 + 495
    [note] = [e["message"] for e in order["events"] if e["kind"] == "customer_note"]
    assert note == "leave at reception; card [redacted]"  # card numbers are never stored
    [logged] = deliveries(api, "site")
    assert "4111" not in json.dumps(logged) and logged["extra"]["note"] == note


def test_generic_timestamps_outside_five_minutes_are_refused(generic, app):
    body = as_body(generic_order())
    for skew in (timedelta(minutes=-6), timedelta(minutes=6), timedelta(hours=-2)):
        headers = standard_headers(GENERIC_SECRET, body, at=datetime.now(UTC) + skew)
        resp = post_channel(generic.client, "site", body, headers)
        assert resp.status_code == 401 and resp.get_json()["code"] == "unauthorized"
    assert counts(app) == {"orders": 0, "inbox": 0, "inbound": 0}
    fresh = standard_headers(GENERIC_SECRET, body, at=datetime.now(UTC) - timedelta(minutes=4))
    assert post_channel(generic.client, "site", body, fresh).status_code == 201


# ----------------------------------------------------------------- signatures


def _signed(fmt: str, body: bytes, secret: str) -> dict:
    return {"shopify": shopify_headers, "woocommerce": woo_headers, "generic": standard_headers}[fmt](secret, body)


@pytest.mark.parametrize("fmt", ["shopify", "woocommerce", "generic"])
def test_missing_or_wrong_signatures_are_401_and_store_nothing(shop, app, fmt):
    api = shop
    secret = {"shopify": SHOPIFY_SECRET, "woocommerce": WOO_SECRET, "generic": GENERIC_SECRET}[fmt]
    make_channel(api, "chan", fmt, secret, sku_map={"457924702": "CASE-BLUE", "93": "WOO-SINGLE"})
    payload = {"shopify": sample("shopify_orders_create.json"),
               "woocommerce": sample("woocommerce_order_created.json"), "generic": generic_order()}[fmt]
    body = as_body(payload)
    signature_header = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature",
                        "generic": "webhook-signature"}[fmt]
    good = _signed(fmt, body, secret)
    missing = {k: v for k, v in good.items() if k != signature_header}
    other_secret = _signed(fmt, body, "whsec_QW5vdGhlclNlY3JldEtleUZvclRlc3RzMTIzNDU2" if fmt == "generic"
                           else "someone-elses-secret")
    tampered = as_body({**payload, "id": 999}) if fmt != "generic" else as_body(generic_order("A-666"))
    for body_sent, headers in ((body, missing), (body, other_secret), (tampered, good),
                               (body, {**good, signature_header: "v1,AAAA" if fmt == "generic" else "AAAA"})):
        resp = post_channel(api.client, "chan", body_sent, headers)
        assert resp.status_code == 401, resp.get_json()
        assert resp.get_json()["code"] == "unauthorized"
    assert counts(app) == {"orders": 0, "inbox": 0, "inbound": 0}
    assert post_channel(api.client, "chan", body, good).status_code == 201


def test_an_unknown_channel_is_404(shop):
    body = as_body(generic_order())
    resp = post_channel(shop.client, "nowhere", body, standard_headers(GENERIC_SECRET, body))
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"


def test_secret_rotation_accepts_both_for_a_while(generic, app):
    api = generic
    new_secret = "whsec_TmV3U2VjcmV0Rm9yUm90YXRpb25UZXN0czEyMzQ="
    resp = api.post("/channels/site/secret", {"secret": new_secret, "keep_previous_hours": 24})
    assert resp.status_code == 200 and resp.get_json()["previous_secret_expires_at"]
    assert "secret" not in resp.get_json()  # the caller chose it: nothing to show
    for index, secret in enumerate((GENERIC_SECRET, new_secret)):
        body = as_body(generic_order(f"R-{index}"))
        assert post_channel(api.client, "site", body, standard_headers(secret, body)).status_code == 201
    resp = api.post("/channels/site/secret", {"keep_previous_hours": 0})  # generated, the old one dropped now
    generated = resp.get_json()["secret"]
    assert generated.startswith("whsec_") and resp.get_json()["previous_secret_expires_at"] is None
    body = as_body(generic_order("R-2"))
    assert post_channel(api.client, "site", body, standard_headers(new_secret, body)).status_code == 401
    assert post_channel(api.client, "site", body, standard_headers(generated, body)).status_code == 201


# ----------------------------------------------------------------- exactly once


def test_replays_of_a_delivery_give_one_order_and_the_first_answer(shopify, app):
    api = shopify
    for index, times in enumerate((1, 2, 5)):
        payload = {**sample("shopify_orders_create.json"), "id": 820982911946154508 + index}
        body = as_body(payload)
        headers = shopify_headers(SHOPIFY_SECRET, body, webhook_id=f"b54557e4-bdd9-4b37-8a5f-bf7d70bcd04{index}")
        answers = [post_channel(api.client, "shop-us", body, headers) for _ in range(times)]
        assert [a.status_code for a in answers] == [201] * times
        assert all(a.get_json() == answers[0].get_json() for a in answers)
        assert all(a.headers.get("Webhook-Replayed") == "true" for a in answers[1:])
    assert counts(app) == {"orders": 3, "inbox": 3, "inbound": 3}
    assert stock_of(api, "IPOD2008GREEN")["reserved"] == 3
    # the same order in a new delivery (Shopify's orders/paid, or a resend): 200 with the existing order
    again = post_channel(api.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body, topic="orders/paid"))
    assert again.status_code == 200 and again.get_json()["id"] == answers[0].get_json()["id"]
    assert counts(app) == {"orders": 3, "inbox": 4, "inbound": 4}
    assert stock_of(api, "IPOD2008GREEN")["reserved"] == 3
    assert sorted(d["outcome"] for d in deliveries(api, "shop-us")) == ["created"] * 3 + ["existing"]


@pytest.mark.parametrize("same_delivery", [True, False], ids=["same-delivery-id", "new-delivery-ids"])
def test_concurrent_replays_give_one_order(woo, app, same_delivery):
    body = as_body(sample("woocommerce_order_created.json"))
    fixed = woo_headers(WOO_SECRET, body, delivery_id="4c7f2f1e0b9a")
    barrier = threading.Barrier(5)
    answers = []

    def send():
        client = app.test_client()
        barrier.wait()
        answers.append(post_channel(client, "woo", body, fixed if same_delivery else woo_headers(WOO_SECRET, body)))

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers).count(201) >= 1
    assert all(a.status_code in (200, 201) for a in answers), [a.get_json() for a in answers]
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert counts(app)["orders"] == 1
    assert stock_of(woo, "Bar3")["reserved"] == 1
    with app.app_context():
        check_stock_invariants()
        db.session.remove()


# ----------------------------------------------------------------- refusals, kept for staff


def test_an_unknown_sku_is_422_naming_the_line_and_can_be_retried_after_mapping(shop, app):
    api = shop
    make_channel(api, "shop-us", "shopify", SHOPIFY_SECRET)  # no sku map: the case has no sku on Shopify
    payload = sample("shopify_orders_create.json")
    payload["line_items"][0]["sku"] = "IPOD-UNKNOWN"
    body = as_body(payload)
    headers = shopify_headers(SHOPIFY_SECRET, body)
    resp = post_channel(api.client, "shop-us", body, headers)
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert "sku_map" in errors["line_items"]["1"]["sku"][0]  # no sku and no mapped id
    assert counts(app) == {"orders": 0, "inbox": 0, "inbound": 1}

    assert api.client.patch("/api/v1/channels/shop-us", json={"sku_map": {"457924702": "CASE-BLUE"}},
                            headers=api._headers(None)).status_code == 200
    resp = post_channel(api.client, "shop-us", body, headers)
    assert resp.status_code == 422
    assert "unknown sku 'IPOD-UNKNOWN'" in resp.get_json()["errors"]["line_items"]["0"]["sku"][0]
    [logged] = deliveries(api, "shop-us", outcome="rejected")
    assert logged["attempts"] == 2 and logged["status_code"] == 422 and logged["external_id"] == "820982911946154508"
    assert "line_items" in logged["errors"] and logged["payload"]["id"] == 820982911946154508
    assert api.get("/channels/shop-us").get_json()["rejected_deliveries"] == 1

    api.client.patch("/api/v1/channels/shop-us", json={"sku_map": {"457924702": "CASE-BLUE",
                                                                   "IPOD-UNKNOWN": "IPOD2008GREEN"}},
                     headers=api._headers(None))
    resp = post_channel(api.client, "shop-us", body, headers)  # the channel's retry of the same delivery
    assert resp.status_code == 201, resp.get_json()
    [logged] = deliveries(api, "shop-us")
    assert logged["outcome"] == "created" and logged["attempts"] == 3 and logged["errors"] == {}


def test_missing_addresses_are_accepted_and_flagged_from_platforms_and_422_from_generic(shop, app):
    api = shop
    make_channel(api, "shop-us", "shopify", SHOPIFY_SECRET, sku_map={"457924702": "CASE-BLUE"})
    make_channel(api, "woo", "woocommerce", WOO_SECRET, sku_map={"93": "WOO-SINGLE"})
    make_channel(api, "site", "generic", GENERIC_SECRET)
    receive(api, "WOO-SINGLE", 5)

    payload = sample("shopify_orders_create.json")
    del payload["shipping_address"], payload["billing_address"]
    body = as_body(payload)
    resp = post_channel(api.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["shipping_address"] is None and "review:address" in order["flags"]

    payload = sample("woocommerce_order_created.json")
    payload["shipping"]["postcode"] = ""
    payload["shipping"]["country"] = "Germany"
    body = as_body(payload)
    resp = post_channel(api.client, "woo", body, woo_headers(WOO_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    order = api.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["shipping_address"]["country"] == "GERMANY" and "review:address" in order["flags"]
    review = next(e for e in order["events"] if e["kind"] == "address_review")
    assert "country" in review["data"]["errors"]

    payload = generic_order()
    del payload["customer"]["shipping_address"]["city"]
    payload["customer"]["email"] = "not-an-address"
    body = as_body(payload)
    resp = post_channel(api.client, "site", body, standard_headers(GENERIC_SECRET, body))
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]["customer"]
    assert "city" in errors["shipping_address"] and "email" in errors
    assert counts(app)["orders"] == 2
    assert len(deliveries(api, "site", outcome="rejected")) == 1


def test_an_order_without_shipping_address_is_not_shipped_to_the_billing_address(shopify, app):
    """Pickup, digital goods: no shipping address is not the billing address; staff review it."""
    payload = sample("shopify_orders_create.json")
    del payload["shipping_address"]
    body = as_body(payload)
    resp = post_channel(shopify.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
    order = shopify.get(f"/orders/{resp.get_json()['id']}").get_json()
    assert order["shipping_address"] is None and order["billing_address"]["postal_code"] == "40202"
    assert order["customer"]["name"] == "Bob Norman" and "review:address" in order["flags"]


def test_stock_problems_are_409_recorded_and_a_retry_after_the_receipt_succeeds(shopify, app):
    api = shopify
    payload = sample("shopify_orders_create.json")
    payload["line_items"][1]["quantity"] = 12  # 10 cases in stock
    body = as_body(payload)
    headers = shopify_headers(SHOPIFY_SECRET, body)
    resp = post_channel(api.client, "shop-us", body, headers)
    assert resp.status_code == 409 and resp.get_json()["code"] == "insufficient_stock"
    assert "only 10 of CASE-BLUE" in resp.get_json()["errors"]["line_items"]["1"]["sku"][0]
    assert stock_of(api, "CASE-BLUE")["reserved"] == 0 and stock_of(api, "IPOD2008GREEN")["reserved"] == 0
    [logged] = deliveries(api, "shop-us", outcome="rejected")
    assert logged["status_code"] == 409 and "insufficient_stock" in logged["reason"]
    receive(api, "CASE-BLUE", 5)
    resp = post_channel(api.client, "shop-us", body, headers)
    assert resp.status_code == 201
    assert stock_of(api, "CASE-BLUE")["reserved"] == 12


def test_broken_bodies_are_kept_for_audit_without_card_numbers(generic, app):
    api = generic
    body = b'{"external_id": "X-1", "note": "card 4111 1111 1111 1111 exp 12/29", '
    resp = post_channel(api.client, "site", body, standard_headers(GENERIC_SECRET, body))
    assert resp.status_code == 400 and resp.get_json()["code"] == "invalid_json"
    [logged] = deliveries(api, "site")
    assert logged["outcome"] == "rejected" and isinstance(logged["payload"], str)
    assert "4111" not in logged["payload"] and "[redacted]" in logged["payload"] and "exp 12/29" in logged["payload"]

    body = as_body(generic_order(lines=[{"sku": "MUG", "quantity": "2"}], card={"number": "4242424242424242"}))
    resp = post_channel(api.client, "site", body, standard_headers(GENERIC_SECRET, body))
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"card": ["unknown field"], "lines": {"0": {"quantity": [
        "an integer is required"]}}}
    logged = deliveries(api, "site")[0]
    assert "4242424242424242" not in json.dumps(logged) and logged["payload"]["card"] == "[redacted]"


def test_a_currency_other_than_the_products_is_422(shopify, app):
    payload = copy.deepcopy(sample("shopify_orders_create.json"))
    payload["currency"] = "CAD"
    body = as_body(payload)
    resp = post_channel(shopify.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body))
    assert resp.status_code == 422 and "USD" in resp.get_json()["errors"]["currency"][0]
    assert counts(app)["orders"] == 0


@pytest.mark.parametrize("fmt", ["shopify", "generic"])
def test_an_order_in_an_unknown_currency_is_refused_and_kept_for_staff(shop, app, fmt):
    if fmt == "shopify":
        make_channel(shop, "shop-us", "shopify", SHOPIFY_SECRET, sku_map={"457924702": "CASE-BLUE"})
        payload, name, secret, headers = copy.deepcopy(sample("shopify_orders_create.json")), "shop-us", \
            SHOPIFY_SECRET, shopify_headers
    else:
        make_channel(shop, "site", "generic", GENERIC_SECRET)
        payload, name, secret, headers = generic_order(), "site", GENERIC_SECRET, standard_headers
    payload["currency"] = "XYZ"
    body = as_body(payload)
    resp = post_channel(shop.client, name, body, headers(secret, body))
    assert resp.status_code == 422, resp.get_json()
    assert "not an active ISO 4217 currency" in resp.get_json()["errors"]["currency"][0]
    assert counts(app)["orders"] == 0
    [logged] = deliveries(shop, name, outcome="rejected")
    assert logged["status_code"] == 422 and "currency" in logged["errors"]
    assert logged["payload"]["currency"] == "XYZ"

    payload["currency"] = "xau"  # gold is in ISO 4217 but has no minor unit: not a price currency
    body = as_body(payload)
    assert post_channel(shop.client, name, body, headers(secret, body)).status_code == 422
    assert counts(app)["orders"] == 0


# ----------------------------------------------------------------- configuration


def test_channel_configuration_is_validated_and_secrets_are_never_listed(shop, app):
    api = shop
    for body, field in (({"name": "Bad Name", "format": "generic"}, "name"),
                        ({"name": "api", "format": "generic"}, "name"),
                        ({"name": "x", "format": "ebay", "secret": "s" * 10}, "format"),
                        ({"name": "x", "format": "shopify"}, "secret"),
                        ({"name": "x", "format": "generic", "secret": "not base64 at all!"}, "secret"),
                        ({"name": "x", "format": "shopify", "secret": "s" * 10, "payment_provider": "paypal"},
                         "payment_provider"),
                        ({"name": "x", "format": "shopify", "secret": "s" * 10, "sku_map": {"1": "bad sku!"}},
                         "sku_map"),
                        ({"name": "x", "format": "shopify", "secret": "s" * 10, "extra": 1}, "extra")):
        resp = api.post("/channels", body)
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in resp.get_json()["errors"], (body, resp.get_json())
    created = make_channel(api, "site", "generic")
    assert created["secret"].startswith("whsec_") and created["webhook_path"] == "/api/v1/channels/site/orders"
    make_channel(api, "site", "generic", expect=409)
    listed = api.get("/channels").get_json()
    assert [c["name"] for c in listed] == ["site"] and "secret" not in listed[0]
    assert "secret" not in api.get("/channels/site").get_json()
    assert api.get("/channels/nope").status_code == 404
    assert api.client.get("/api/v1/channels").status_code == 401  # the configuration needs an API key

    body = as_body(generic_order())
    assert post_channel(api.client, "site", body, standard_headers(created["secret"], body)).status_code == 201
