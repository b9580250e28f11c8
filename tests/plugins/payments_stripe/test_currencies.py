"""Amounts at Stripe: ISO 4217 minor units as they are, except where Stripe's API counts otherwise."""

from __future__ import annotations

import pytest
from conftest import place, receive

from engine.errors import ValidationFailed
from plugins.payments_stripe.stripe_api import from_stripe, to_stripe

from .test_payments import _intents, _succeeded_charges


def _product(api, sku, price, currency):
    r = api.post("/products", {"sku": sku, "name": sku.title(), "price": price, "currency": currency})
    assert r.status_code == 201, r.get_json()
    receive(api, sku, 3)


def test_amounts_convert_only_where_stripe_differs_from_iso_4217():
    assert [to_stripe(1999, c) for c in ("EUR", "USD", "GBP")] == [1999] * 3
    assert [to_stripe(500, c) for c in ("JPY", "KRW", "CLP", "VND", "UGX")] == [500] * 5  # zero-decimal: as is
    assert to_stripe(1500, "KWD") == 1500 and to_stripe(12340, "bhd") == 12340  # three decimals, last digit 0
    assert to_stripe(1500, "ISK") == 150000  # whole krónur, two-decimal in Stripe's API
    assert to_stripe(150000, "MGA") == 1500  # two decimals in ISO 4217, zero-decimal at Stripe
    for amount, currency in ((1999, "EUR"), (500, "JPY"), (1500, "KWD"), (1500, "ISK"), (150000, "MGA")):
        assert from_stripe(to_stripe(amount, currency), currency) == amount
    with pytest.raises(ValidationFailed, match="multiples of 10"):
        to_stripe(1505, "KWD")
    with pytest.raises(ValidationFailed, match="whole units"):
        to_stripe(150050, "MGA")


def test_a_yen_order_is_charged_without_conversion(api, localstripe, stripe_sdk):
    _product(api, "TEA", 1500, "JPY")
    order = place(api, [("TEA", 2)], payment_provider="stripe", payment_method="pm_card_visa")
    assert (order["status"], order["totals"]["currency"], order["totals"]["paid"]) == ("paid", "JPY", 3000)
    [pi] = _intents(stripe_sdk, order["id"])
    assert (pi.amount, pi.currency) == (3000, "jpy")

    r = api.post(f"/orders/{order['id']}/refunds", {"amount": 700, "reason": "one broken"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["totals"]["refunded"] == 700
    [charge] = _succeeded_charges(stripe_sdk, order["id"])
    assert charge.amount_refunded == 700


def test_an_isk_order_is_sent_in_stripes_two_decimal_form(api, localstripe, stripe_sdk):
    _product(api, "WOOL", 4900, "ISK")  # 4,900 krónur: ISK has no minor unit
    order = place(api, [("WOOL", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    assert (order["status"], order["totals"]["paid"]) == ("paid", 4900)
    assert order["payments"][0]["amount"] == 4900
    [pi] = _intents(stripe_sdk, order["id"])
    assert (pi.amount, pi.currency) == (490000, "isk")


def test_a_kwd_amount_stripe_cannot_charge_leaves_the_order_placed(api, localstripe, stripe_sdk):
    _product(api, "DATES", 1505, "KWD")  # 1.505 KWD: Stripe wants the last digit 0
    order = place(api, [("DATES", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    assert (order["status"], order["payments"]) == ("placed", [])
    assert _intents(stripe_sdk, order["id"]) == []
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 402, r.get_json()
    assert "multiples of 10" in r.get_json()["message"] and "1.505 KWD" in r.get_json()["message"]
