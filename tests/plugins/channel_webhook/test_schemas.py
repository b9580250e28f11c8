"""The formats' marshmallow schemas: every field error of a payload at once, named after the payload's own
fields; messy platform data kept; what nothing uses left unchecked; what used to be a 500 now kept or a 422."""

from __future__ import annotations

import copy
import json

import pytest

from engine.plugin_api import ValidationFailed
from plugins.channel_webhook.formats import GenericFormat, ShopifyFormat, WooCommerceFormat

from .support import as_body, post_channel, sample, woo_headers
from .test_inbound import WOO_SECRET, generic_order, make_channel, shop  # noqa: F401


class Request:
    """What a format reads of a request: the raw body and the headers."""

    def __init__(self, payload, headers=None):
        self.body, self.headers = as_body(payload), headers or {}

    def get_data(self):
        return self.body


def errors_of(fmt, payload, headers=None) -> dict:
    with pytest.raises(ValidationFailed) as caught:
        fmt.parse(Request(payload, headers))
    assert caught.value.message == "the payload is not a valid order: see errors, field by field"
    return json.loads(json.dumps(caught.value.errors))


def shopify(payload, topic="orders/create"):
    return ShopifyFormat().parse(Request(payload, {"X-Shopify-Topic": topic}))


def woo(payload):
    return WooCommerceFormat().parse(Request(payload, {"X-WC-Webhook-Topic": "order.created"}))


def test_a_generic_payload_gets_all_its_field_errors_at_once_named_after_its_fields():
    payload = generic_order(currency="XYZ", gift="yes", payment_status="due", card="4242424242424242",
                            lines=[{"sku": "MUG", "quantity": "2"}, {"sku": " ", "quantity": 0, "unit_price": -1,
                                                                    "colour": "red"}, "MUG"])
    payload["customer"]["email"] = "not-an-address"
    payload["customer"]["shipping_address"].update(postal_code="1" * 21, country="Germany")
    del payload["customer"]["shipping_address"]["city"]
    assert errors_of(GenericFormat(), payload) == {
        "card": ["unknown field"], "currency": ["'XYZ' is not an active ISO 4217 currency code (e.g. EUR, USD, JPY)"],
        "gift": ["true or false"], "payment_status": ["paid or unpaid"],
        "customer": {"email": ["not a valid e-mail address"], "shipping_address": {
            "city": ["required"], "postal_code": ["at most 20 characters"],
            "country": ["an ISO 3166-1 alpha-2 country code, e.g. DE"]}},
        "lines": {"0": {"quantity": ["an integer is required"]},
                  "1": {"sku": ["required"], "quantity": ["must be at least 1"], "unit_price": ["must be at least 0"],
                        "colour": ["unknown field"]},
                  "2": ["an object is required"]}}


def test_a_generic_payload_in_an_envelope_has_its_errors_under_data_and_a_customer_that_is_no_object_one():
    envelope = {"type": "order.created", "timestamp": "2026-01-01T00:00:00Z",
                "data": generic_order(customer="ann@example.com", lines=[])}
    assert errors_of(GenericFormat(), envelope) == {"data": {
        "customer": ["an object with email, name and shipping_address is required"],
        "lines": ["at least one line is required"]}}
    del envelope["data"]["external_id"]
    envelope["data"].update(id="B-7", customer=generic_order()["customer"], lines=[{"sku": "MUG", "quantity": 1}])
    parsed = GenericFormat().parse(Request(envelope))
    assert parsed["external_id"] == "B-7"  # "id" names the order too
    assert parsed["paths"]["lines"] == "data.lines" and parsed["lines"][0]["path"] == "data.lines.0"


def test_woocommerce_tax_amounts_are_read_only_when_the_prices_include_tax_and_named_as_sent():
    payload = sample("woocommerce_order_created.json")
    payload.update(discount_tax="1.5.0", shipping_tax="-1.00")
    assert woo(payload)["shipping_total"] == 1000  # prices without tax: the tax fields are not the prices'
    payload["prices_include_tax"] = True
    assert errors_of(WooCommerceFormat(), payload, {"X-WC-Webhook-Topic": "order.created"}) == {
        "discount_tax": ["'1.5.0' is not a decimal amount"], "shipping_tax": ["must be a finite amount of at least 0"]}


def test_woocommerce_lists_that_are_not_lists_keep_the_order():
    """These were a 500 (the loop over ``1``) and the order was lost."""
    payload = sample("woocommerce_order_created.json")
    payload.update(meta_data=1, fee_lines=1, tax_lines=7, refunds=True)
    parsed = woo(payload)
    assert parsed["external_id"] == "727" and parsed["tax_lines"] == [] and parsed["refunds"] == []
    assert parsed["non_stock_lines"] == []


def test_shopify_fields_that_nothing_uses_are_not_checked():
    payload = sample("shopify_orders_create.json")
    assert any(item["discount_allocations"] for item in payload["line_items"]) and payload["shipping_lines"]
    expected = shopify(payload)
    payload["total_discounts"] = "ten"  # the lines' discount allocations say the discount
    payload["total_shipping_price_set"] = {"shop_money": {"amount": "free", "currency_code": "USD"}}
    parsed = shopify(payload)
    assert (parsed["discount_total"], parsed["shipping_total"]) == (expected["discount_total"],
                                                                    expected["shipping_total"])
    for item in payload["line_items"]:
        item["discount_allocations"] = []
    payload["shipping_lines"] = []
    assert errors_of(ShopifyFormat(), payload, {"X-Shopify-Topic": "orders/create"}) == {
        "total_discounts": ["'ten' is not a decimal amount"],
        "total_shipping_price_set": {"shop_money": {"amount": ["'free' is not a decimal amount"]}}}


def test_shopify_money_in_an_unknown_currency_is_read_in_the_order_currency_not_a_500():
    payload = sample("shopify_orders_create.json")
    payload["presentment_currency"] = "EUR"
    payload["subtotal_price_set"] = {"presentment_money": {"amount": "10.50", "currency_code": "??"}}
    parsed = shopify(payload)
    assert parsed["presentment_currency"] == "EUR" and parsed["presentment_totals"]["subtotal"] == 1050
    payload["presentment_currency"] = "ZZZ"  # not a currency: the buyer's amounts are not kept, the order is
    assert "presentment_currency" not in shopify(payload) and shopify(payload)["external_id"]


def test_shopify_email_and_refund_transactions():
    payload = copy.deepcopy(sample("shopify_orders_create.json"))
    payload.update(email=True, contact_email=None)
    payload["customer"]["email"] = None
    assert shopify(payload)["customer"]["email"] is None  # no e-mail: kept, and flagged by the core
    payload["email"] = "not-an-address"
    assert errors_of(ShopifyFormat(), payload, {"X-Shopify-Topic": "orders/create"}) == {
        "email": ["not a valid e-mail address"]}
    refund = {"id": 9, "order_id": 7, "transactions": [
        {"kind": "sale", "amount": "not read"}, {"kind": "refund", "status": "failure", "amount": "not read"},
        {"kind": "refund", "status": "success", "amount": "300", "currency": "JPY"},
        {"kind": "refund", "amount": "2.50", "currency": None}]}
    assert shopify(refund, "refunds/create")["refund_amount"] == 550
    refund["transactions"][3]["amount"] = "2.505"
    assert errors_of(ShopifyFormat(), refund, {"X-Shopify-Topic": "refunds/create"}) == {
        "transactions": {"3": {"amount": ["'2.505' has more decimals than USD has"]}}}


@pytest.mark.parametrize("key", ["meta_data", "fee_lines", "tax_lines", "refunds"])
def test_a_woocommerce_order_with_a_list_that_is_no_list_is_placed(shop, app, key):  # noqa: F811
    make_channel(shop, "woo", "woocommerce", WOO_SECRET, sku_map={"93": "WOO-SINGLE"})
    payload = sample("woocommerce_order_created.json")
    payload[key] = 1
    body = as_body(payload)
    resp = post_channel(shop.client, "woo", body, woo_headers(WOO_SECRET, body))
    assert resp.status_code == 201, resp.get_json()
