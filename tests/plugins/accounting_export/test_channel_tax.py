"""Channel orders are booked from their own tax figures: the VAT legs of the sale are the platform's tax
lines (shipping's tax too), not the plugin's default rate; an order without tax books none; REST orders
keep the configured rates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from conftest import place

from .helpers import beancount_errors, by_account, check_books, entries, export_text, walk

SECRET = "channel-tax-secret"
RECV = "Assets:Receivables:Customers"


def _signed(header: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def send(api, channel: str, payload: dict):
    body = json.dumps(payload).encode()
    if channel == "shopify":
        headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": _signed("", body),
                   "X-Shopify-Webhook-Id": str(uuid.uuid4())}
    else:
        headers = {"X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": _signed("", body),
                   "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex}
    resp = api.client.post(f"/api/v1/channels/{channel}/orders", data=body,
                           headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == 201, resp.get_json()
    return api.get(f"/orders/{resp.get_json()['id']}").get_json()


@pytest.fixture
def channels(shop):
    for fmt in ("shopify", "woocommerce"):
        resp = shop.post("/channels", {"name": fmt, "format": fmt, "secret": SECRET})
        assert resp.status_code == 201, resp.get_json()
    return shop


ADDRESS = {"first_name": "Ann", "last_name": "Example", "address1": "Hauptstr. 1", "city": "Berlin",
           "zip": "10115", "country_code": "DE"}

# a German Shopify shop, prices including VAT: mugs at 19 %, a book at 7 %, shipping at 19 %
SHOPIFY_INCLUSIVE = {
    "id": 820001, "email": "ann@example.com", "currency": "EUR", "financial_status": "paid",
    "taxes_included": True, "total_price": "48.70", "subtotal_price": "43.80", "total_discounts": "0.00",
    "total_tax": "5.89",
    "tax_lines": [{"title": "MwSt 19%", "rate": 0.19, "price": "4.58"}, {"title": "MwSt 7%", "rate": 0.07, "price": "1.31"}],
    "customer": {"id": 1, "first_name": "Ann", "last_name": "Example"},
    "billing_address": ADDRESS, "shipping_address": ADDRESS,
    "line_items": [
        {"id": 1, "sku": "MUG", "title": "Mug", "quantity": 2, "price": "11.90", "requires_shipping": True,
         "tax_lines": [{"title": "MwSt 19%", "rate": 0.19, "price": "3.80"}]},
        {"id": 2, "sku": "BOOK-TALE", "title": "Tale", "quantity": 1, "price": "20.00", "requires_shipping": True,
         "tax_lines": [{"title": "MwSt 7%", "rate": 0.07, "price": "1.31"}]}],
    "shipping_lines": [{"title": "DHL", "price": "4.90", "discount_allocations": [],
                        "tax_lines": [{"title": "MwSt 19%", "rate": 0.19, "price": "0.78"}]}],
}

# a WooCommerce shop with net prices, tax on top: caps at 19 % with a 5.00 coupon, a book at 7 %,
# shipping at 19 %
WOO_EXCLUSIVE = {
    "id": 9100, "status": "processing", "currency": "EUR", "prices_include_tax": False, "customer_id": 3,
    "discount_total": "5.00", "discount_tax": "0.95", "shipping_total": "4.90", "shipping_tax": "0.93",
    "cart_tax": "6.15", "total_tax": "7.08", "total": "56.98",
    "billing": {"first_name": "Ann", "last_name": "Example", "address_1": "Hauptstr. 1", "city": "Berlin",
                "postcode": "10115", "country": "DE", "email": "ann@example.com"},
    "shipping": {"first_name": "Ann", "last_name": "Example", "address_1": "Hauptstr. 1", "city": "Berlin",
                 "postcode": "10115", "country": "DE"},
    "line_items": [
        {"id": 1, "name": "Cap", "product_id": 5, "quantity": 2, "sku": "CAP", "subtotal": "30.00",
         "subtotal_tax": "5.70", "total": "25.00", "total_tax": "4.75"},
        {"id": 2, "name": "Tale", "product_id": 6, "quantity": 1, "sku": "BOOK-TALE", "subtotal": "20.00",
         "subtotal_tax": "1.40", "total": "20.00", "total_tax": "1.40"}],
    "tax_lines": [{"id": 1, "label": "MwSt 19%", "rate_percent": 19, "tax_total": "4.75", "shipping_tax_total": "0.93"},
                  {"id": 2, "label": "MwSt 7%", "rate_percent": 7, "tax_total": "1.40", "shipping_tax_total": "0.00"}],
}


def confirm(api, order: dict) -> None:
    scans = [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]
    assert api.post(f"/orders/{order['id']}/pick", {"scans": scans}).status_code == 200
    resp = api.post(f"/orders/{order['id']}/confirm")
    assert resp.status_code == 200, resp.get_json()


def vat_legs(postings: list[dict]) -> dict[str, int]:
    return {p["tax_rate"]: -p["amount"] for p in postings if p["role"] == "vat"}


def test_a_shopify_tax_inclusive_order_books_the_platforms_tax_lines(channels, app):
    order = send(channels, "shopify", SHOPIFY_INCLUSIVE)
    assert order["tax"]["lines"] == [{"title": "MwSt 19%", "rate": "0.19", "amount": 458, "shipping_amount": 78},
                                     {"title": "MwSt 7%", "rate": "0.07", "amount": 131}]
    confirm(channels, order)
    with app.app_context():
        [sale] = entries(order["id"], "sale")
        postings = sale["postings"]
        assert vat_legs(postings) == {"19": 458, "7": 131}  # the tax lines, not 19 % of everything
        accounts = by_account(postings)
        assert accounts[(RECV, None)] == 4870
        assert accounts[("Income:Shipping", "19")] == -412  # 4.90 gross less its 0.78 VAT
        sales = {rate: -amount for (account, rate), amount in accounts.items() if account == "Income:Sales"}
        # net = gross - tax: 23.80 - 3.80 at 19 %, 20.00 - 1.31 at 7 % (split by the tax each rate bore)
        assert sum(sales.values()) == 4870 - 589 - 412 and set(sales) == {"19", "7"}
        assert abs(sales["19"] - 2000) <= 1 and abs(sales["7"] - 1869) <= 1
        check_books()
        assert beancount_errors(export_text("beancount")) == []
    receipt = channels.get(f"/accounting/orders/{order['id']}/receipt").get_json()["data"]
    assert {row["rate"]: row["tax"] for row in receipt["tax"]} == {"19": 458, "7": 131}
    report = channels.get("/accounting/reports/tax").get_json()
    assert {row["rate"]: row["tax"] for row in report["rates"]} == {"19": 458, "7": 131}


def test_a_woocommerce_exclusive_order_books_its_tax_on_top(channels, app):
    order = send(channels, "woocommerce", WOO_EXCLUSIVE)
    assert order["totals"]["total"] == 5698 and "review:totals" not in order["flags"]
    confirm(channels, order)
    with app.app_context():
        [sale] = entries(order["id"], "sale")
        assert vat_legs(sale["postings"]) == {"19": 475 + 93, "7": 140}
        accounts = by_account(sale["postings"])
        assert accounts[("Income:Shipping", "19")] == -490  # net prices: shipping is net already
        net = {}
        for (account, rate), amount in accounts.items():
            if account in ("Income:Sales", "Income:Discounts"):
                net[rate] = net.get(rate, 0) - amount
        assert net == {"19": 2500, "7": 2000}  # 30.00 - 5.00 coupon at 19 %, 20.00 at 7 %
        assert sum(-a for (account, _), a in accounts.items() if account == "Income:Discounts") == -500
        check_books()
        assert beancount_errors(export_text("beancount")) == []


def test_an_order_the_channel_says_carries_no_tax_books_no_vat(channels, app):
    untaxed = {**WOO_EXCLUSIVE, "id": 9101, "discount_tax": "0.00", "shipping_tax": "0.00", "cart_tax": "0.00",
               "total_tax": "0.00", "total": "49.90", "tax_lines": [],
               "line_items": [{**line, "subtotal_tax": "0.00", "total_tax": "0.00"}
                              for line in WOO_EXCLUSIVE["line_items"]]}
    order = send(channels, "woocommerce", untaxed)
    assert order["tax"]["status"] == "none"
    confirm(channels, order)
    with app.app_context():
        [sale] = entries(order["id"], "sale")
        assert vat_legs(sale["postings"]) == {}
        accounts = by_account(sale["postings"])
        assert accounts[(RECV, None)] == 4990 and accounts[("Income:Shipping", "0")] == -490
        check_books()
    receipt = channels.get(f"/accounting/orders/{order['id']}/receipt").get_json()["data"]
    assert {line["tax_rate"] for line in receipt["lines"]} == {"0"}


def test_rest_orders_keep_the_configured_rates(channels, app):
    order = place(channels, [("MUG", 1), ("BOOK-TALE", 1)])
    assert order["tax"]["status"] == "not_given"
    walk(channels, order, "confirmed")
    with app.app_context():
        [sale] = entries(order["id"], "sale")
        assert vat_legs(sale["postings"]) == {"19": 190, "7": 131}  # 11.90 at 19 %, 20.00 at 7 % (configured)
