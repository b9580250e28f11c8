"""``place_order`` keeps what a channel charged: its prices, discounts, shipping and tax, and its note.

These fields come from plugins (a sales channel's webhook); ``POST /orders`` does not accept them, except the
billing address and the recipient's name on the shipping address.
"""

from __future__ import annotations

from conftest import SUPPORT_ADDRESS, order_body, place, product, receive

from engine.services import orders


def test_channel_discount_tax_shipping_and_note(api, ctx):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    data = {"channel": "market", "external_id": "M-1",
            "customer": {"email": "ann@example.com", "name": "Ann", "shipping_address": dict(SUPPORT_ADDRESS)},
            "lines": [{"sku": "MUG", "quantity": 2, "unit_price": 1000}],
            "shipping_total": 450, "discount_total": 300, "tax_total": 217, "note": "gift wrap, please",
            "payment_status": "paid", "payment_reference": "market:M-1"}
    order, created = orders.place_order(data)
    assert created
    assert (order.subtotal, order.discount_total, order.shipping_total, order.tax_total, order.total) == (
        2000, 300, 450, 217, 2000 - 300 + 450 + 217)
    assert order.paid_total == order.total and order.status == "paid"
    notes = [e for e in orders.get_order(order.id, full=True).events if e.kind == "customer_note"]
    assert [n.message for n in notes] == ["gift wrap, please"]

    data = {**data, "external_id": "M-2", "discount_total": 5000, "payment_status": None, "note": None}
    order, _ = orders.place_order(data)
    assert order.discount_total == order.subtotal == 2000  # a discount never exceeds the lines
    assert order.total == 450 + 217
    assert not [e for e in orders.get_order(order.id, full=True).events if e.kind == "customer_note"]


def test_the_rest_body_does_not_take_the_channel_fields(api):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    for field, value in (("discount_total", 100), ("tax_total", 100), ("note", "x"), ("shipping_total", 100)):
        resp = api.post("/orders", order_body([("MUG", 1)], **{field: value}))
        assert resp.status_code == 422 and field in resp.get_json()["errors"], field


def _channel_order(external_id, **extra):
    customer = {"email": "ann@example.com", "name": "Ann Buyer", "shipping_address": dict(SUPPORT_ADDRESS),
                **extra.pop("customer", {})}
    return {"channel": "market", "external_id": external_id, "customer": customer, "incomplete_ok": True,
            "lines": [{"sku": "MUG", "quantity": 1, "unit_price": 1000}], **extra}


def test_non_stock_lines_are_in_the_totals_and_never_reserved_nor_picked(api, ctx):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 5)
    order, _ = orders.place_order(_channel_order("N-1", non_stock_lines=[
        {"kind": "gift_card", "title": "Gift card 25", "quantity": 1, "unit_price": 2500},
        {"kind": "tip", "title": "Tip", "quantity": 1, "unit_price": 300}], payment_status="paid"))
    assert (order.subtotal, order.total) == (3800, 3800)
    body = api.get(f"/orders/{order.id}").get_json()
    assert [(x["kind"], x["title"], x["total"]) for x in body["non_stock_lines"]] == [
        ("gift_card", "Gift card 25", 2500), ("tip", "Tip", 300)]
    assert [ln["sku"] for ln in body["lines"]] == ["MUG"]
    assert api.get("/stock/MUG").get_json()["reserved"] == 1  # the mug only
    # one scan of the mug picks the whole order: the gift card and the tip are not in the warehouse
    resp = api.post(f"/orders/{order.id}/pick", {"scans": ["MUG"]})
    assert resp.status_code == 200 and resp.get_json()["status"] == "picked", resp.get_json()
    assert api.post(f"/orders/{order.id}/confirm").status_code == 200
    resp = api.post(f"/orders/{order.id}/pack", {"scans": ["MUG"]})
    assert resp.status_code == 200 and resp.get_json()["status"] == "packed", resp.get_json()


def test_a_channel_order_without_email_or_address_is_accepted_and_flagged(api, ctx):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 5)
    first, _ = orders.place_order(_channel_order("E-1", customer={"email": None, "channel_customer_id": "77",
                                                                  "shipping_address": None}))
    second, _ = orders.place_order(_channel_order("E-2", customer={"email": None, "channel_customer_id": "77"}))
    anonymous, _ = orders.place_order(_channel_order("E-3", customer={"email": None}))
    assert first.flags == ["no_email", "review:address"] and first.email is None
    assert first.shipping_address is None
    assert second.flags == ["repeat", "no_email"]
    assert first.customer_id == second.customer_id != anonymous.customer_id  # one profile per channel customer
    events = {e.kind: e.message for e in orders.get_order(first.id, full=True).events}
    assert events["address_review"] == "no shipping address was sent"
    assert api.get("/orders?flag=no_email").get_json()["items"][0]["id"] == anonymous.id
    assert api.get(f"/orders/{first.id}").get_json()["customer"]["email"] is None


def test_postcodes_follow_each_countrys_rules(api, ctx):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 9)
    hong_kong = {"line1": "Flat 5, 18 Harbour Road", "city": "Wan Chai", "country": "HK"}
    body = order_body([("MUG", 1)])
    body["customer"]["shipping_address"] = hong_kong
    resp = api.post("/orders", body)
    assert resp.status_code == 201, resp.get_json()
    body["customer"]["shipping_address"] = {"line1": "Sheikh Zayed Road 1", "city": "Dubai", "country": "AE"}
    assert api.post("/orders", body).status_code == 201
    body["customer"]["shipping_address"] = {"line1": "1 Main St", "city": "Cork", "country": "IE"}
    assert api.post("/orders", body).status_code == 201  # Eircodes are optional
    body["customer"]["shipping_address"] = {"line1": "1 Main St", "city": "Austin", "country": "US",
                                            "postal_code": "ABCDE"}
    resp = api.post("/orders", body)
    assert resp.status_code == 422
    assert "postal_code" in resp.get_json()["errors"]["customer"]["shipping_address"]
    # a channel order with a wrong postcode is kept, flagged for review
    order, _ = orders.place_order(_channel_order("P-1", customer={"shipping_address": {
        "line1": "Sample Street 12", "city": "Berlin", "postal_code": "1011", "country": "DE"}}))
    assert "review:address" in order.flags


def test_billing_and_recipient_never_overwrite_the_buyer(api, ctx):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 5)
    billing = {"line1": "Buyer Lane 1", "city": "Hamburg", "postal_code": "20095", "country": "DE"}
    gift_to = {**SUPPORT_ADDRESS, "name": "Carla Recipient"}
    body = order_body([("MUG", 1)], billing_address=billing, gift=True)
    body["customer"]["shipping_address"] = gift_to
    resp = api.post("/orders", body)
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["customer"]["name"] == "Ann Example"
    assert data["shipping_address"]["name"] == "Carla Recipient" and data["billing_address"] == billing
    profile = api.get(f"/customers/{data['customer']['id']}").get_json()
    assert profile["name"] == "Ann Example" and profile["addresses"] == [billing]


def test_the_channels_tax_currency_and_total_are_kept(api, ctx):
    product(api, "MUG", price=1000)
    receive(api, "MUG", 5)
    order, _ = orders.place_order(_channel_order(
        "T-1", tax_total=160, prices_include_tax=True, tax_status="inclusive",
        tax_lines=[{"title": "MwSt", "rate": "0.19", "amount": 160}], presentment_currency="CHF",
        presentment_totals={"subtotal": 980, "discount": 0, "shipping": 0, "tax": 156, "total": 980},
        channel_total=1000))
    assert (order.total, order.tax_total, order.flags) == (1000, 160, [])  # the tax is in the prices
    body = api.get(f"/orders/{order.id}").get_json()
    assert body["tax"] == {"status": "inclusive", "prices_include_tax": True,
                           "lines": [{"title": "MwSt", "rate": "0.19", "amount": 160}]}
    assert body["presentment"] == {"currency": "CHF", "subtotal": 980, "discount": 0, "shipping": 0, "tax": 156,
                                   "total": 980}
    # the lines say 1000 + 450 shipping, the channel charged 1400: its total is kept, flagged, both shown
    order, _ = orders.place_order(_channel_order("T-2", shipping_total=450, channel_total=1400))
    assert order.total == 1400 and "review:totals" in order.flags
    event = next(e for e in orders.get_order(order.id, full=True).events if e.kind == "totals_differ")
    assert event.data == {"channel_total": 1400, "lines_total": 1450}
    rest = place(api, [("MUG", 1)])
    assert rest["tax"]["status"] == "not_given" and rest["presentment"]["currency"] == "EUR"


def test_vip_thresholds_per_currency(app, api, ctx):
    app.config["VIP_THRESHOLDS"] = {"EUR": 5000, "JPY": 500000}
    product(api, "MUG", price=6000)
    product(api, "MUG-JP", price=6000, currency="JPY")
    receive(api, "MUG", 5)
    receive(api, "MUG-JP", 5)
    assert "vip" in place(api, [("MUG", 1)])["flags"]  # 60.00 EUR >= 50.00 EUR
    assert "vip" not in place(api, [("MUG-JP", 1)], email="jo@example.com")["flags"]  # 6000 JPY < 500000 JPY
    app.config["VIP_THRESHOLDS"] = {"EUR": 5000}
    assert "vip" not in place(api, [("MUG-JP", 1)], email="kim@example.com")["flags"]  # no JPY threshold


def test_customers_spending_is_kept_per_currency_and_vip_uses_the_orders_currency(app, api, ctx):
    app.config["VIP_THRESHOLDS"] = {"EUR": 100000, "JPY": 10000}
    product(api, "MUG", price=6000)
    product(api, "MUG-JP", price=6000, currency="JPY")
    receive(api, "MUG", 5)
    receive(api, "MUG-JP", 5)
    first = place(api, [("MUG", 1)])
    # 60.00 EUR and 6000 JPY are not 12000 of anything: below the JPY threshold
    second = place(api, [("MUG-JP", 1)])
    assert "vip" not in second["flags"]
    customer = api.get(f"/customers/{first['customer']['id']}").get_json()
    assert customer["total_spent_by_currency"] == {"EUR": 6000, "JPY": 6000}
    assert (customer["total_spent"], customer["currency"], customer["vip"]) == (6000, "EUR", False)
    third = place(api, [("MUG-JP", 1)])
    assert "vip" in third["flags"]  # 12000 JPY >= 10000 JPY
    assert api.post(f"/orders/{second['id']}/cancel", {}).status_code == 200
    customer = api.get(f"/customers/{first['customer']['id']}").get_json()
    assert customer["total_spent_by_currency"] == {"EUR": 6000, "JPY": 6000} and customer["vip"] is True
