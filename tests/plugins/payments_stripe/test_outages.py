"""Stripe down, answers lost, rate limits: clear errors, nothing half written, a retry charges once.

The localstripe fixture really stops listening (the spy drops the connection of
the request it traps, then the server stops) and starts again on the same port
with its store intact.
"""

from __future__ import annotations

import pytest
from conftest import place, product, receive

from engine import jobs
from engine.db import db
from plugins.payments_stripe.models import StripeOperation

from .test_payments import _intents, _ship, _succeeded_charges


def _shop(api):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 5)


def _intent_rows(app, order_id):
    with app.app_context():
        return [(r.attempt, r.status, r.idempotency_key, r.payment_intent_id) for r in db.session.execute(
            db.select(StripeOperation).where(StripeOperation.order_id == order_id,
                                             StripeOperation.operation == "intent")).scalars()]


def _errors(order):
    return [e["message"] for e in order["events"] if e["kind"] == "payment_error"]


def test_stripe_stopped_before_the_intent_exists_then_a_retry_charges_once(app, api, localstripe, stripe_sdk):
    _shop(api)
    localstripe.fail_next("POST", "/v1/payment_intents", "before")  # the server dies on this request
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")

    # the order stands (201), intact: placed, stock reserved, no payment written; the failure is on its timeline
    assert (order["status"], order["payment_status"], order["payments"]) == ("placed", "unpaid", [])
    assert "Stripe could not be reached (the connection was dropped" in _errors(order)[0]
    assert api.get("/stock/MUG").get_json()["reserved"] == 1
    [(attempt, status, key, pi_id)] = _intent_rows(app, order["id"])
    assert (attempt, status, pi_id) == (1, "unknown", None)  # the key was stored before the call

    # while Stripe stays down: a clear API error, nothing changes
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 502 and r.get_json()["code"] == "provider_unavailable"
    assert "Stripe could not be reached (connection refused)" in r.get_json()["message"]
    now = api.get(f"/orders/{order['id']}").get_json()
    assert (now["status"], now["payments"], len(_errors(now))) == ("placed", [], 2)

    localstripe.start()
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 200, r.get_json()
    paid = r.get_json()
    assert (paid["status"], paid["payment_status"], paid["totals"]["paid"]) == ("paid", "paid", 2500)

    # the retry sent the stored idempotency key again: one intent, one charge
    assert localstripe.requests("POST", "/v1/payment_intents") == [key, key]
    [(_a, status, key_after, pi_id)] = _intent_rows(app, order["id"])
    assert (status, key_after, pi_id) == ("succeeded", key, paid["payments"][0]["reference"])
    assert [pi.id for pi in _intents(stripe_sdk, order["id"])] == [pi_id]
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1


def test_the_answer_to_the_charge_is_lost_then_a_retry_does_not_charge_again(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe")
    pi_id = order["payments"][0]["reference"]
    confirm_path = f"/v1/payment_intents/{pi_id}/confirm"
    localstripe.fail_next("POST", confirm_path, "after")  # Stripe charges, then its answer never arrives

    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 502 and "could not be reached" in r.get_json()["message"]
    mid = api.get(f"/orders/{order['id']}").get_json()
    assert (mid["status"], mid["payment_status"], mid["totals"]["paid"]) == ("placed", "pending", 0)

    localstripe.start()
    assert stripe_sdk.v1.payment_intents.retrieve(pi_id).status == "succeeded"  # the money was taken
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["status"], r.get_json()["totals"]["paid"]) == ("paid", 2500)
    assert len(localstripe.requests("POST", confirm_path)) == 1  # read the state, did not confirm again
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1


def test_a_rate_limit_is_a_clear_error_and_the_retry_reuses_the_key(app, api, localstripe, stripe_sdk):
    _shop(api)
    localstripe.fail_next("POST", "/v1/payment_intents", "429")
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    assert order["status"] == "placed" and "rate limiting" in _errors(order)[0]
    r = api.post(f"/orders/{order['id']}/pay", {"payment_method": "pm_card_visa"})
    assert r.status_code == 200 and r.get_json()["status"] == "paid"
    [key] = [row[2] for row in _intent_rows(app, order["id"])]
    assert localstripe.requests("POST", "/v1/payment_intents") == [key, key]
    assert len(_succeeded_charges(stripe_sdk, order["id"])) == 1


def test_a_refund_whose_answer_is_lost_is_made_once(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    pi_id = order["payments"][0]["reference"]
    localstripe.fail_next("POST", "/v1/refunds", "after")
    r = api.post(f"/orders/{order['id']}/refunds", {"amount": 500})
    assert r.status_code == 502 and "could not be reached" in r.get_json()["message"]
    mid = api.get(f"/orders/{order['id']}").get_json()
    assert (mid["payment_status"], mid["totals"]["refunded"]) == ("paid", 0)

    localstripe.start()
    r = api.post(f"/orders/{order['id']}/refunds", {"amount": 500})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["payment_status"], r.get_json()["totals"]["refunded"]) == ("partially_refunded", 500)
    assert [rf.amount for rf in stripe_sdk.v1.refunds.list(params={"payment_intent": pi_id}).data] == [500]
    assert len(localstripe.requests("POST", "/v1/refunds")) == 1  # found by its key, not made again


@pytest.mark.stripe_capture("manual")
def test_capture_when_stripe_is_down_at_shipping_is_retried(app, api, localstripe, stripe_sdk):
    _shop(api)
    order = place(api, [("MUG", 1)], payment_provider="stripe", payment_method="pm_card_visa")
    localstripe.stop()
    shipped = _ship(api, order["id"])  # the order ships; the capture waits in the outbox
    assert (shipped["status"], shipped["payment_status"], shipped["totals"]["paid"]) == ("shipped", "authorized", 0)

    localstripe.start()
    with app.app_context():
        jobs.relay_due()
    after = api.get(f"/orders/{order['id']}").get_json()
    assert (after["status"], after["payment_status"], after["totals"]["paid"]) == ("shipped", "paid", 2500)
    assert stripe_sdk.v1.payment_intents.retrieve(order["payments"][0]["reference"]).status == "succeeded"
