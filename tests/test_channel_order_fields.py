"""``place_order`` keeps what a channel charged: its prices, discounts, shipping and tax, and its note.

These fields come from plugins (a sales channel's webhook); ``POST /orders`` does not accept them.
"""

from __future__ import annotations

from conftest import SUPPORT_ADDRESS, order_body, product, receive

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
