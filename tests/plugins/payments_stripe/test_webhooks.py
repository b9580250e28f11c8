"""POST /api/v1/payments/stripe/webhook: signatures, once-only processing, any order of delivery.

localstripe sends ``payment_intent.succeeded`` and ``payment_intent.payment_failed``
itself (first test). The events it does not send (``amount_capturable_updated``,
``canceled``, ``charge.refunded``, ``refund.updated``) are signed here with
Stripe's scheme, around the real objects localstripe holds.
"""

from __future__ import annotations

import json
import time

import pytest
import stripe
from conftest import place, product, receive

from engine.db import db
from engine.models import InboxRecord

from .conftest import post_event, stripe_event, wait_for


def _shop(api):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 10)


def _order(api, order_id):
    return api.get(f"/orders/{order_id}").get_json()


def _inbox(app):
    with app.app_context():
        return sorted(r.delivery_id for r in db.session.execute(
            db.select(InboxRecord).where(InboxRecord.source == "stripe")).scalars())


def _customer_pays(sdk, pi_id, payment_method="pm_card_visa"):
    """What Stripe.js does in the customer's browser with the client_secret."""
    sdk.v1.payment_intents.update(pi_id, params={"payment_method": payment_method})
    return sdk.v1.payment_intents.confirm(pi_id)


def _state(order):
    """What must be the same however the events arrived."""
    return {"status": order["status"], "payment_status": order["payment_status"], "totals": order["totals"],
            "payments": [(p["status"], p["amount"], p["refunded_amount"]) for p in order["payments"]],
            "stage_events": sorted(e["kind"] for e in order["events"]
                                   if e["kind"] in ("order_paid", "refund_issued", "payment_failed"))}


def test_localstripe_delivers_payment_intent_succeeded(app, api, localstripe, stripe_sdk, live_server):
    _shop(api)
    localstripe.register_webhook(live_server + "/api/v1/payments/stripe/webhook")
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    assert order["payment_status"] == "pending"
    pi_id = order["payments"][0]["reference"]

    assert _customer_pays(stripe_sdk, pi_id).status == "succeeded"
    paid = wait_for(lambda: (o := _order(api, order["id"]))["status"] == "paid" and o)
    assert paid, "localstripe's payment_intent.succeeded did not reach the webhook"
    assert (paid["payment_status"], paid["totals"]["paid"]) == ("paid", 2500)
    assert len(_inbox(app)) == 1


def test_localstripe_delivers_payment_failed(app, api, localstripe, stripe_sdk, live_server):
    _shop(api)
    localstripe.register_webhook(live_server + "/api/v1/payments/stripe/webhook")
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    with pytest.raises(stripe.CardError):
        _customer_pays(stripe_sdk, order["payments"][0]["reference"], "pm_card_chargeCustomerFail")
    failed = wait_for(lambda: (o := _order(api, order["id"]))["payment_status"] == "failed" and o)
    assert failed, "localstripe's payment_intent.payment_failed did not reach the webhook"
    assert failed["status"] == "placed"  # the order stays placed
    [event] = [e for e in failed["events"] if e["kind"] == "payment_failed"]
    assert "Your card was declined" in event["message"]


@pytest.mark.stripe_capture("manual")
def test_events_replayed_five_times_and_out_of_order_end_in_the_same_state(app, api, localstripe, stripe_sdk):
    _shop(api)
    in_order = place(api, [("MUG", 2)], payment_provider="stripe")
    shuffled = place(api, [("MUG", 2)], payment_provider="stripe")

    def life(order, deliver):
        """The customer authorises, staff capture and refund 700 in the dashboard; events as Stripe sends them."""
        pi_id = order["payments"][0]["reference"]
        pi = _customer_pays(stripe_sdk, pi_id)
        assert pi.status == "requires_capture"
        events = [stripe_event("payment_intent.amount_capturable_updated", pi.to_dict())]
        deliver(events[-1], "authorized")
        pi = stripe_sdk.v1.payment_intents.capture(pi_id)
        events.append(stripe_event("payment_intent.succeeded", pi.to_dict()))
        deliver(events[-1], "paid")
        refund = stripe_sdk.v1.refunds.create(params={"payment_intent": pi_id, "amount": 700})
        charge = stripe_sdk.v1.charges.retrieve(refund.charge)
        events.append(stripe_event("charge.refunded", charge.to_dict()))
        deliver(events[-1], "partially_refunded")
        events.append(stripe_event("refund.updated", refund.to_dict()))
        deliver(events[-1], "partially_refunded")
        return events

    def deliver_now(order_id):
        def deliver(event, payment_status):
            r = post_event(app, event)
            assert r.status_code == 200, r.get_json()
            now = _order(api, order_id)
            assert now["payment_status"] == payment_status
            assert now["status"] == "paid"  # the authorisation already sent it to the warehouse
        return deliver

    events_in_order = life(in_order, deliver_now(in_order["id"]))
    events_shuffled = life(shuffled, lambda event, status: None)  # Stripe's side done, nothing delivered yet
    assert _order(api, shuffled["id"])["payment_status"] == "pending"

    for _ in range(5):  # newest first, each five times
        for event in reversed(events_shuffled):
            r = post_event(app, event)
            assert r.status_code == 200, r.get_json()
    for event in events_in_order:  # and the in-order ones replayed once more
        r = post_event(app, event)
        assert r.status_code == 200 and r.get_json()["duplicate"] is True

    a, b = _order(api, in_order["id"]), _order(api, shuffled["id"])
    assert _state(a) == _state(b)
    assert _state(a) == {
        "status": "paid", "payment_status": "partially_refunded",
        "totals": {**a["totals"], "paid": 5000, "refunded": 700},
        "payments": [("partially_refunded", 5000, 700)],
        "stage_events": ["order_paid", "refund_issued"]}
    assert len(_inbox(app)) == 8  # each event id once


def test_a_canceled_intent_and_events_that_are_not_ours(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    pi = stripe_sdk.v1.payment_intents.cancel(order["payments"][0]["reference"])  # from the dashboard
    r = post_event(app, stripe_event("payment_intent.canceled", pi.to_dict()))
    assert r.status_code == 200, r.get_json()
    now = _order(api, order["id"])
    assert (now["status"], now["payment_status"]) == ("placed", "failed")
    assert any(e["kind"] == "payment_failed" and "canceled at Stripe" in e["message"] for e in now["events"])

    # an intent another system created on the same account, and an event type hookshop does not use
    foreign = stripe_sdk.v1.payment_intents.create(params={"amount": 999, "currency": "eur"})
    r = post_event(app, stripe_event("payment_intent.succeeded", foreign.to_dict()))
    assert r.status_code == 200 and "not a hookshop payment" in r.get_json()["ignored"]
    r = post_event(app, stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert r.status_code == 200 and "customer.created" in r.get_json()["ignored"]
    assert len(_inbox(app)) == 1


def test_bad_signatures_are_rejected_and_change_nothing(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    pi = _customer_pays(stripe_sdk, order["payments"][0]["reference"])
    event = stripe_event("payment_intent.succeeded", pi.to_dict())
    body = json.dumps(event, indent=2)
    now = int(time.time())

    tampered = body.replace('"amount": 2500', '"amount": 1')
    assert tampered != body
    attempts = {
        "tampered body": post_event(app, event, body=tampered, signature=post_event_signature(body)),
        "wrong secret": post_event(app, event, body=body, secret="whsec_someone_else"),
        "stale timestamp": post_event(app, event, body=body, timestamp=now - 600),
        "future timestamp": post_event(app, event, body=body, timestamp=now + 600),
        "no signature": post_event(app, event, body=body, signature=""),
        "garbage signature": post_event(app, event, body=body, signature="t=abc,v1=zz"),
    }
    for name, r in attempts.items():
        assert r.status_code == 400, name
        assert r.get_json()["code"] == "invalid_signature", name
    assert "tolerance" in attempts["stale timestamp"].get_json()["message"]
    assert "future" in attempts["future timestamp"].get_json()["message"]

    app.config["STRIPE_WEBHOOK_SECRET"] = ""  # read at call time: no secret, no events
    r = post_event(app, event, body=body)
    assert r.status_code == 400 and r.get_json()["code"] == "webhook_not_configured"
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_hookshop_test_secret"

    same = _order(api, order["id"])
    assert (same["status"], same["payment_status"], same["totals"]["paid"]) == ("placed", "pending", 0)
    assert _inbox(app) == []

    # within 5 minutes either way is fine; the genuine event is applied
    r = post_event(app, event, body=body, timestamp=now - 240)
    assert r.status_code == 200, r.get_json()
    assert _order(api, order["id"])["status"] == "paid"


def post_event_signature(body: str) -> str:
    from .conftest import sign

    return sign(body)
