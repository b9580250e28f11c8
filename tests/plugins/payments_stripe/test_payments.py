"""The Stripe provider against localstripe with the official SDK: placement, capture, declines, refunds, cancel."""

from __future__ import annotations

import types

import pytest
from conftest import place, product, receive

import plugins.payments_stripe as payments_stripe
from engine.db import db
from engine.errors import ValidationFailed
from engine.models import Payment
from plugins.payments_stripe.models import StripeOperation

from .conftest import SECRET_KEY


def _shop(api, price=2500, qty=5):
    product(api, "MUG", price=price)
    receive(api, "MUG", qty)


def _events(order):
    return [e["kind"] for e in order["events"]]


def _intents(sdk, order_id):
    """The PaymentIntents localstripe holds for the order (by the metadata the plugin sets)."""
    return [pi for pi in sdk.v1.payment_intents.list(params={"limit": 100}).data
            if pi.metadata.to_dict().get("order_id") == str(order_id)]


def _succeeded_charges(sdk, order_id):
    ids = {pi.id for pi in _intents(sdk, order_id)}
    return [c for c in sdk.v1.charges.list(params={"limit": 100}).data
            if c.payment_intent in ids and c.status == "succeeded"]


def _operations(app, order_id):
    with app.app_context():
        rows = db.session.execute(db.select(StripeOperation).where(StripeOperation.order_id == order_id)
                                  .order_by(StripeOperation.id)).scalars().all()
        return [(r.operation.split(":")[0], r.attempt, r.status, r.idempotency_key, r.payment_intent_id) for r in rows]


def _ship(api, order_id):
    for step, body in (("pick", {"scans": ["MUG"]}), ("confirm", None), ("pack", {"scans": ["MUG"]}),
                       ("ship", {"carrier": "generic", "service": "standard"})):
        r = api.post(f"/orders/{order_id}/{step}", body)
        assert r.status_code == 200, (step, r.get_json())
    return r.get_json()


# ------------------------------------------------------------------ settings


def test_setup_reasons():
    def setup(**config):
        return payments_stripe.plugin_setup(app=types.SimpleNamespace(config=config))

    assert setup() == "HOOKSHOP_STRIPE_SECRET_KEY is not set"
    assert "publishable key" in setup(STRIPE_SECRET_KEY="pk_test_123")
    assert setup(STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_CAPTURE="later") == \
        "HOOKSHOP_STRIPE_CAPTURE must be automatic or manual, not 'later'"
    assert "HOOKSHOP_STRIPE_TIMEOUT" in setup(STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_TIMEOUT="soon")
    assert setup(STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_CAPTURE="manual", STRIPE_WEBHOOK_SECRET="whsec_x") is None
    assert setup(STRIPE_SECRET_KEY="rk_live_abc") is None  # a restricted key works; no webhook secret only warns


def test_the_plugin_is_enabled_with_a_key(api):
    plugins = {p["name"]: p for p in api.get("/plugins").get_json()}
    assert plugins["payments_stripe"]["enabled"] is True
    assert plugins["payments_stripe"]["hooks"] == ["order_cancelled", "order_shipped", "plugin_setup",
                                                   "register_payment_providers"]


# ------------------------------------------------------------------ automatic capture


def test_automatic_capture_at_placement(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 2)], payment_provider="stripe", payment_method="pm_card_visa", channel="web")
    assert (order["status"], order["payment_status"], order["totals"]["paid"]) == ("paid", "paid", 5000)
    [payment] = order["payments"]
    assert payment["provider"] == "stripe" and payment["reference"].startswith("pi_")
    assert (payment["amount"], payment["status"], payment["fee"]) == (5000, "paid", 0)  # localstripe's fee is 0
    assert "order_paid" in _events(order)

    [pi] = _intents(stripe_sdk, order["id"])
    assert pi.id == payment["reference"]
    assert (pi.amount, pi.currency, pi.capture_method, pi.status) == (5000, "eur", "automatic", "succeeded")
    meta = pi.metadata.to_dict()
    assert (meta["order_id"], meta["order_number"], meta["channel"]) == (str(order["id"]), order["number"], "web")
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1

    # our own idempotency key, stored before the call and sent with it
    ops = _operations(app, order["id"])
    assert [(op, status) for op, _a, status, _k, _pi in ops] == [("intent", "succeeded"), ("attach", "succeeded"),
                                                                ("confirm", "succeeded")]
    intent_key = ops[0][3]
    assert intent_key.startswith(f"hookshop-o{order['id']}-intent-a1-") and meta["idempotency_key"] == intent_key
    assert localstripe.requests("POST", "/v1/payment_intents") == [intent_key]
    assert localstripe.requests("POST", f"/v1/payment_intents/{pi.id}/confirm") == [ops[2][3]]

    # the payment record keeps the provider's ids and the status history
    with app.app_context():
        record = db.session.get(Payment, payment["id"])
        assert record.data["payment_intent"] == pi.id and record.data["charge"].startswith("ch_")
        assert record.data["history"] == ["paid"]


def test_without_a_payment_method_the_channel_gets_the_client_secret(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    assert (order["status"], order["payment_status"]) == ("placed", "pending")
    [payment] = order["payments"]
    pi = stripe_sdk.v1.payment_intents.retrieve(payment["reference"])
    assert payment["client_secret"] == pi.client_secret and pi.status == "requires_payment_method"
    # asking again (POST /pay without a payment method) reuses the intent: no second one
    again = api.post(f"/orders/{order['id']}/pay").get_json()
    assert again["status"] == "placed" and [p["reference"] for p in again["payments"]] == [pi.id]
    assert len(_intents(stripe_sdk, order["id"])) == 1


# ------------------------------------------------------------------ manual capture


@pytest.mark.stripe_capture("manual")
def test_authorize_at_placement_and_capture_when_the_order_ships(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    # the authorisation is Stripe's confirmation: the order goes to the warehouse, nothing is captured yet
    assert (order["status"], order["payment_status"], order["totals"]["paid"]) == ("paid", "authorized", 0)
    [payment] = order["payments"]
    assert (payment["status"], payment["amount"]) == ("authorized", 2500)
    pi_id = payment["reference"]
    pi = stripe_sdk.v1.payment_intents.retrieve(pi_id)
    assert (pi.capture_method, pi.status) == ("manual", "requires_capture")

    shipped = _ship(api, order["id"])
    # the capture is the order_shipped stage hook: it runs after the ship request has answered
    assert (shipped["status"], shipped["payment_status"], shipped["totals"]["paid"]) == ("shipped", "authorized", 0)
    shipped = api.get(f"/orders/{order['id']}").get_json()  # (the client waited for the stage hooks)
    assert (shipped["status"], shipped["payment_status"], shipped["totals"]["paid"]) == ("shipped", "paid", 2500)
    assert shipped["payments"][0]["status"] == "paid"
    assert "payment_captured" in _events(shipped)
    assert stripe_sdk.v1.payment_intents.retrieve(pi_id).status == "succeeded"
    capture_path = f"/v1/payment_intents/{pi_id}/capture"
    [capture_key] = localstripe.requests("POST", capture_path)
    assert capture_key.startswith(f"hookshop-o{order['id']}-capture:{pi_id}-a1-")

    # the stage hook runs at least once: running it again captures nothing more
    with app.app_context():
        from engine.services.orders import get_order

        payments_stripe.order_shipped(order=get_order(order["id"]))
    assert localstripe.requests("POST", capture_path) == [capture_key]
    after = api.get(f"/orders/{order['id']}").get_json()
    assert (after["totals"]["paid"], after["payment_status"]) == (2500, "paid")
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1
    with app.app_context():
        assert db.session.get(Payment, payment["id"]).data["history"] == ["authorized", "paid"]


# ------------------------------------------------------------------ declines


def test_a_declined_card(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_chargeCustomerFail")
    assert (order["status"], order["payment_status"]) == ("placed", "failed")
    failed = [e for e in order["events"] if e["kind"] == "payment_failed"]
    assert len(failed) == 1 and "card declined: Your card was declined. (card_declined)" in failed[0]["message"]
    assert order["payments"][0]["status"] == "failed"

    # the same card again: a clear 402, the order stays placed
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_chargeCustomerFail"})
    assert r.status_code == 402 and r.get_json()["code"] == "payment_failed"
    assert "card declined" in r.get_json()["message"]
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "placed"

    # another card works: one charge in all, the declined intents are canceled
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 200, r.get_json()
    paid = r.get_json()
    assert (paid["status"], paid["payment_status"], paid["totals"]["paid"]) == ("paid", "paid", 2500)
    intents = {pi.id: pi.status for pi in _intents(stripe_sdk, order["id"])}
    assert sorted(intents.values()) == ["canceled", "canceled", "succeeded"]
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1
    assert [p["status"] for p in paid["payments"]] == ["failed", "failed", "paid"]


# ------------------------------------------------------------------ refunds


def test_a_partial_then_a_full_refund(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 2)], payment_provider="stripe", payment_method="pm_card_visa")
    oid, pi_id = order["id"], order["payments"][0]["reference"]

    r = api.post(f"/orders/{oid}/refunds", {"amount": 1200, "reason": "scratched"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["payment_status"], body["totals"]["refunded"]) == ("partially_refunded", 1200)
    assert body["payments"][0]["refunded_amount"] == 1200
    charge = stripe_sdk.v1.charges.retrieve(_succeeded_charges(stripe_sdk, oid)[0].id)
    assert charge.amount_refunded == 1200

    # never above what was captured minus earlier refunds: refused before Stripe is called
    before = len(localstripe.log)
    r = api.post(f"/orders/{oid}/refunds", {"amount": 3801})
    assert r.status_code == 409 and r.get_json()["code"] == "refund_exceeds_refundable"
    assert "3800" in r.get_json()["message"]
    assert len(localstripe.log) == before
    with app.app_context():
        payment = db.session.get(Payment, body["payments"][0]["id"])
        with pytest.raises(ValidationFailed, match="captured minus refunded"):
            payments_stripe._provider.refund(payment, 3801)
    assert len(localstripe.log) == before

    r = api.post(f"/orders/{oid}/refunds", {"amount": 3800})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["payment_status"], body["totals"]["refunded"]) == ("refunded", 5000)
    assert body["payments"][0]["status"] == "refunded"
    assert stripe_sdk.v1.charges.retrieve(charge.id).amount_refunded == 5000
    refunds = stripe_sdk.v1.refunds.list(params={"payment_intent": pi_id}).data
    assert sorted(rf.amount for rf in refunds) == [1200, 3800]
    keys = localstripe.requests("POST", "/v1/refunds")
    assert len(keys) == 2 and all(k.startswith(f"hookshop-o{oid}-refund:{pi_id}:") for k in keys)
    assert [e["kind"] for e in body["events"]].count("refund_issued") == 2


# ------------------------------------------------------------------ cancel


def test_cancel_an_unpaid_order_cancels_the_intent(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    pi_id = order["payments"][0]["reference"]
    r = api.post(f"/orders/{order['id']}/cancel", {"reason": "changed my mind"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["payment_status"], body["payments"][0]["status"]) == ("cancelled", "voided", "voided")
    assert stripe_sdk.v1.payment_intents.retrieve(pi_id).status == "canceled"
    assert api.get("/stock/MUG").get_json()["reserved"] == 0


def test_cancel_a_declined_order_cancels_its_open_intent(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_chargeCustomerFail")
    pi_id = order["payments"][0]["reference"]
    assert stripe_sdk.v1.payment_intents.retrieve(pi_id).status == "requires_payment_method"
    assert api.post(f"/orders/{order['id']}/cancel").status_code == 200
    assert stripe_sdk.v1.payment_intents.retrieve(pi_id).status == "canceled"  # by the order_cancelled hook


def test_cancel_a_paid_order_refunds_it(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    r = api.post(f"/orders/{order['id']}/cancel")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["payment_status"], body["totals"]["refunded"]) == ("cancelled", "refunded", 2500)
    [charge] = _succeeded_charges(stripe_sdk, order["id"])
    assert stripe_sdk.v1.charges.retrieve(charge.id).amount_refunded == 2500


@pytest.mark.stripe_capture("manual")
def test_cancel_an_authorised_order_cancels_the_authorisation(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    assert order["payment_status"] == "authorized"
    body = api.post(f"/orders/{order['id']}/cancel").get_json()
    assert (body["status"], body["payment_status"], body["totals"]["refunded"]) == ("cancelled", "voided", 0)
    assert stripe_sdk.v1.payment_intents.retrieve(order["payments"][0]["reference"]).status == "canceled"
    assert _succeeded_charges(stripe_sdk, order["id"])[0].captured is False  # nothing was ever captured


def test_the_provider_passes_the_conformance_kit(app, api, localstripe, stripe_sdk):
    from engine.services.orders import get_order
    from engine.testing import check_payment_provider, check_plugin

    assert check_plugin(payments_stripe) == ["order_cancelled", "order_shipped", "plugin_setup",
                                             "register_payment_providers"]
    _shop(api)
    order = place(api, [("MUG", 1)])  # the manual provider's order: the kit calls pay itself
    with app.app_context():
        check_payment_provider(payments_stripe._provider, get_order(order["id"]))
    assert len(_intents(stripe_sdk, order["id"])) == 1


def test_three_d_secure_waits_for_the_customer(app, api, localstripe, stripe_sdk):
    import urllib.parse
    import urllib.request

    _shop(api)
    card = stripe_sdk.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4000002500003155", "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method=card.id)
    assert (order["status"], order["payment_status"]) == ("placed", "pending")
    payment = order["payments"][0]
    assert payment["client_secret"] and any("3-D Secure" in e["message"] for e in order["events"])

    # the customer completes the challenge in the browser (localstripe's stand-in for Stripe.js)
    data = urllib.parse.urlencode({"client_secret": payment["client_secret"], "success": "true"}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{localstripe.url}/v1/payment_intents/{payment['reference']}/_authenticate", data=data,
        headers={"Authorization": f"Bearer {SECRET_KEY}"}), timeout=10)
    r = api.post(f"/orders/{order['id']}/pay")  # no webhook here: asking again reads the state
    assert r.status_code == 200 and r.get_json()["status"] == "paid"
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1


def test_cancel_after_the_customer_paid_unseen_asks_to_record_the_payment_first(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    pi_id = order["payments"][0]["reference"]
    stripe_sdk.v1.payment_intents.update(pi_id, params={"payment_method": "pm_card_visa"})
    stripe_sdk.v1.payment_intents.confirm(pi_id)  # paid in the browser; the webhook has not arrived
    r = api.post(f"/orders/{order['id']}/cancel")
    assert (r.status_code, r.get_json()["code"]) == (409, "payment_already_captured")
    assert f"POST /orders/{order['id']}/pay" in r.get_json()["message"]
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "placed"  # nothing cancelled
    assert api.post(f"/orders/{order['id']}/pay").get_json()["status"] == "paid"
    body = api.post(f"/orders/{order['id']}/cancel").get_json()
    assert (body["status"], body["payment_status"], body["totals"]["refunded"]) == ("cancelled", "refunded", 2500)
