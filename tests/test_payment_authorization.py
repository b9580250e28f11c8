"""Provider-agnostic payment rules that the Stripe plugin relies on.

* An authorisation of everything due is the provider's confirmation: the order goes
  ``placed`` -> ``paid`` with ``payment_status: authorized`` (``order_paid`` fires with
  ``captured: false``); the capture later (a ``paid`` outcome with the same reference)
  makes it ``payment_status: paid`` without moving the order again.
* A provider that fails right after placement leaves the order placed and the answer 201.
"""

from __future__ import annotations

import pytest
from conftest import place, product, receive

from engine import hookimpl
from engine.services.payments import PaymentOutcome, RefundOutcome, apply_payment


class Holder:
    """Authorises at placement; ``fail`` makes pay raise as if the provider were down."""

    name = "holder"

    def __init__(self):
        self.fail = False
        self.voided = []

    def pay(self, order, payment_method=None, data=None):
        if self.fail:
            raise ConnectionError("holder is down")
        return PaymentOutcome("authorized", order.total - order.paid_total, f"auth-{order.id}")

    def refund(self, payment, amount):
        return RefundOutcome(amount, f"holder-refund-{payment.id}-{amount}")

    def void(self, payment):
        self.voided.append(payment.reference)

    @hookimpl
    def register_payment_providers(self):
        return [self]


@pytest.fixture
def holder():
    return Holder()


@pytest.fixture
def app_config(holder):
    return {"EXTRA_PLUGINS": [("holder", holder)]}


def _kinds(order):
    return [e["kind"] for e in order["events"]]


def test_an_authorisation_confirms_the_order_and_the_capture_pays_it(app, api):
    product(api, "MUG", price=1500)
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 2)], payment_provider="holder")
    assert (order["status"], order["payment_status"], order["totals"]["paid"]) == ("paid", "authorized", 0)
    assert order["payments"][0]["status"] == "authorized"
    [paid_event] = [e for e in order["events"] if e["kind"] == "order_paid"]
    assert paid_event["data"]["captured"] is False and paid_event["data"]["amount"] == 3000

    oid = order["id"]
    for step, body in (("pick", {"scans": ["MUG", "MUG"]}), ("confirm", None), ("pack", {"scans": ["MUG", "MUG"]}),
                       ("ship", {"carrier": "generic", "service": "standard"})):
        assert api.post(f"/orders/{oid}/{step}", body).status_code == 200, step

    with app.app_context():  # the provider captured: the same reference, now paid
        apply_payment(oid, "holder", PaymentOutcome("paid", 3000, f"auth-{oid}"))
        apply_payment(oid, "holder", PaymentOutcome("paid", 3000, f"auth-{oid}"))  # a replay changes nothing
    after = api.get(f"/orders/{oid}").get_json()
    assert (after["status"], after["payment_status"], after["totals"]["paid"]) == ("shipped", "paid", 3000)
    assert after["payments"][0]["status"] == "paid"
    assert _kinds(after).count("payment_captured") == 1 and _kinds(after).count("order_paid") == 1
    assert "payment_unexpected" not in _kinds(after)


def test_a_partial_authorisation_keeps_the_order_placed(app, api):
    product(api, "MUG", price=1500)
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 1)])
    with app.app_context():
        apply_payment(order["id"], "manual", PaymentOutcome("authorized", 1000, "part-auth"))
    now = api.get(f"/orders/{order['id']}").get_json()
    assert (now["status"], now["payment_status"]) == ("placed", "authorized")
    assert "payment_authorized" in _kinds(now) and "order_paid" not in _kinds(now)


def test_cancelling_an_authorised_order_voids_the_authorisation(app, api, holder):
    product(api, "MUG", price=1500)
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 1)], payment_provider="holder")
    body = api.post(f"/orders/{order['id']}/cancel").get_json()
    assert (body["status"], body["payment_status"], body["payments"][0]["status"]) == ("cancelled", "voided", "voided")
    assert holder.voided == [f"auth-{order['id']}"]


def test_a_provider_failing_at_placement_leaves_the_order_placed(app, api, holder):
    product(api, "MUG", price=1500)
    receive(api, "MUG", 3)
    holder.fail = True
    order = place(api, [("MUG", 1)], payment_provider="holder")  # 201: the order exists
    assert (order["status"], order["payment_status"], order["payments"]) == ("placed", "unpaid", [])
    assert any(e["kind"] == "payment_error" and "holder is down" in e["message"] for e in order["events"])
    r = api.post(f"/orders/{order['id']}/pay")
    assert r.status_code == 502 and r.get_json()["code"] == "provider_unavailable"
    holder.fail = False
    assert api.post(f"/orders/{order['id']}/pay").get_json()["status"] == "paid"
