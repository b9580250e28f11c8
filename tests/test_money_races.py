"""Money and stock under concurrency: every action that moves money or stock is one decision under
one lock (docs/design-decisions.md, "Money and stock under one lock").

Each race runs many threads, each with its own test client (its own app context, session and
database connection), released together by a barrier, on SQLite and on PostgreSQL, and is
repeated. The answers may be the first answer or a 409, never a 5xx; afterwards money and
stock must be consistent.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import date

import pytest
from conftest import place, product, receive, stock_of
from invariants import check_stock_invariants
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from test_concurrency import answer, together

from engine import hookimpl
from engine.db import db, utcnow
from engine.models import Order, Payment, Refund, Return, Shipment, StockMovement
from engine.services.payments import PaymentOutcome, RefundOutcome
from engine.services.shipping import Rate, ShipmentInfo

ROUNDS = 3


class SlowProvider:
    """A payment provider whose calls can be held at a gate (to open a race window) or fail.

    Like a card provider it starts a pending payment at placement (the first call for an order);
    ``POST /orders/{id}/pay`` then records it paid."""

    name = "slow"

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_refunds = 0
        self.pay_calls = 0
        self.refund_calls = 0
        self.started: set[int] = set()

    def pay(self, order, payment_method=None, data=None):
        if order.id not in self.started:
            self.started.add(order.id)
            return PaymentOutcome("pending", data["amount"], f"slow-intent-{order.id}")
        self.pay_calls += 1
        self.entered.set()
        self.gate.wait(20)
        return PaymentOutcome("paid", data["amount"], f"slow-intent-{order.id}")

    def refund(self, payment, amount):
        self.refund_calls += 1
        self.entered.set()
        self.gate.wait(20)
        if self.fail_refunds:
            self.fail_refunds -= 1
            raise RuntimeError("the provider is down")
        return RefundOutcome(amount=amount, reference=f"slow-refund-{uuid.uuid4().hex[:10]}")

    def void(self, payment):
        return None


class SlowCarrier:
    """A carrier whose shipment creation can be held at a gate."""

    name = "slowpost"
    services = ["standard"]

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls = 0

    def rates(self, order):
        return [Rate(self.name, "standard", 500, order.currency, date(2030, 1, 2))]

    def create_shipment(self, order, service):
        self.calls += 1
        self.entered.set()
        self.gate.wait(20)
        return ShipmentInfo(tracking_number=f"SLOW-{order.id}-{self.calls}", price=500)


class SlowPlugin:
    def __init__(self):
        self.provider = SlowProvider()
        self.carrier = SlowCarrier()

    @hookimpl
    def register_payment_providers(self):
        return [self.provider]

    @hookimpl
    def register_carriers(self):
        return [self.carrier]


@pytest.fixture
def slow():
    return SlowPlugin()


@pytest.fixture
def app_config(slow):
    return {"EXTRA_PLUGINS": [("slow", slow)],
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 40, "max_overflow": 10, "pool_timeout": 60}}


def no_server_errors(results):
    assert all(status < 500 for status, _ in results), [b for s, b in results if s >= 500]


def codes(results) -> Counter:
    return Counter(body.get("code") for status, body in results if status == 409)


def _packed(api, sku: str, provider: str = "manual") -> dict:
    order = place(api, [(sku, 1)], payment_provider=provider)
    oid = order["id"]
    for path, body in (("pay", {}), ("pick", {"scans": [sku]}), ("confirm", {}), ("pack", {"scans": [sku]})):
        resp = api.post(f"/orders/{oid}/{path}", body)
        assert resp.status_code == 200, (path, resp.get_json())
    return api.get(f"/orders/{oid}").get_json()


def _delivered(api, sku: str, quantity: int = 2, provider: str = "manual") -> dict:
    order = place(api, [(sku, quantity)], payment_provider=provider)
    oid = order["id"]
    for path, body in (("pay", {}), ("pick", {"scans": [sku] * quantity}), ("confirm", {}),
                       ("pack", {"scans": [sku] * quantity}), ("ship", {"carrier": "generic", "service": "standard"}),
                       ("deliver", {})):
        resp = api.post(f"/orders/{oid}/{path}", body)
        assert resp.status_code == 200, (path, resp.get_json())
    return api.get(f"/orders/{oid}").get_json()


# ---------------------------------------------------------------- payments


def test_concurrent_payments_of_one_order_are_recorded_once(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", ROUNDS)
    for _ in range(ROUNDS):
        oid = place(api, [("MUG", 1)])["id"]
        results = together(app, api.key, [lambda c, oid=oid: answer(c.post(f"/orders/{oid}/pay"))] * 8)
        no_server_errors(results)
        assert Counter(status for status, _ in results) == {200: 1, 409: 7}, results
        assert set(codes(results)) <= {"order_busy", "illegal_transition"}
        order = api.get(f"/orders/{oid}").get_json()
        assert (order["status"], order["payment_status"], order["totals"]["paid"]) == ("paid", "paid", 2500)
        assert len(order["payments"]) == 1
    with app.app_context():
        assert db.session.execute(select(func.sum(Payment.amount))).scalar() == 2500 * ROUNDS
        db.session.rollback()


def test_concurrent_part_payments_never_exceed_what_is_due(api, app):
    product(api, "LAMP", price=3000)
    receive(api, "LAMP", ROUNDS)
    for _ in range(ROUNDS):
        oid = place(api, [("LAMP", 1)])["id"]
        results = together(app, api.key, [lambda c, oid=oid: answer(c.post(f"/orders/{oid}/pay", {"amount": 1000}))] * 6)
        no_server_errors(results)
        assert set(codes(results)) <= {"order_busy", "illegal_transition", "nothing_due"}
        order = api.get(f"/orders/{oid}").get_json()
        paid = sum(p["amount"] for p in order["payments"])
        assert paid == order["totals"]["paid"] == 1000 * Counter(s for s, _ in results)[200] <= 3000
        # the rest is paid in turn; a payment beyond what is due is refused, saying so
        while order["totals"]["paid"] < 3000:
            resp = api.post(f"/orders/{oid}/pay", {"amount": 3000})
            assert (resp.status_code, resp.get_json()["code"]) == (409, "overpayment")
            assert str(3000 - order["totals"]["paid"]) in resp.get_json()["message"]
            order = api.post(f"/orders/{oid}/pay", {"amount": 1000}).get_json()
        assert (order["status"], order["payment_status"]) == ("paid", "paid")


def test_a_payment_under_way_makes_a_second_one_wait_with_a_409(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)], payment_provider="slow")["id"]
    slow.provider.gate.clear()
    first: list = []
    thread = threading.Thread(target=lambda: first.append(answer(api.post(f"/orders/{oid}/pay"))))
    thread.start()
    assert slow.provider.entered.wait(10)
    resp = api.post(f"/orders/{oid}/pay")
    assert (resp.status_code, resp.get_json()["code"]) == (409, "order_busy")
    assert "try again" in resp.get_json()["message"]
    resp = api.post(f"/orders/{oid}/cancel")
    assert (resp.status_code, resp.get_json()["code"]) == (409, "order_busy")
    slow.provider.gate.set()
    thread.join(20)
    assert first[0][0] == 200 and first[0][1]["status"] == "paid"
    assert slow.provider.pay_calls == 1


def test_a_claim_left_by_a_crashed_process_expires(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)])["id"]
    with app.app_context():
        db.session.execute(update(Order).where(Order.id == oid).values(
            claim="pay", claim_token="deadbeef", claim_expires_at=utcnow().replace(year=2099)))
        db.session.commit()
    resp = api.post(f"/orders/{oid}/pay")
    assert (resp.status_code, resp.get_json()["code"]) == (409, "order_busy")
    with app.app_context():  # the lease ran out
        db.session.execute(update(Order).where(Order.id == oid).values(claim_expires_at=utcnow().replace(year=2000)))
        db.session.commit()
    assert api.post(f"/orders/{oid}/pay").get_json()["status"] == "paid"
    with app.app_context():
        order = db.session.get(Order, oid)
        assert (order.claim, order.claim_token, order.claim_expires_at) == (None, None, None)
        db.session.rollback()


# ---------------------------------------------------------------- refunds


def test_concurrent_full_refunds_refund_once(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", ROUNDS)
    for _ in range(ROUNDS):
        oid = place(api, [("MUG", 1)])["id"]
        assert api.post(f"/orders/{oid}/pay").status_code == 200
        results = together(app, api.key,
                           [lambda c, oid=oid: answer(c.post(f"/orders/{oid}/refunds", {"amount": 2500}))] * 8)
        no_server_errors(results)
        assert Counter(status for status, _ in results) == {200: 1, 409: 7}, results
        assert set(codes(results)) <= {"refund_in_progress", "refund_exceeds_refundable"}
        order = api.get(f"/orders/{oid}").get_json()
        assert (order["totals"]["refunded"], order["payment_status"]) == (2500, "refunded")
        assert [(r["amount"], r["status"]) for r in order["refunds"]] == [(2500, "succeeded")]
        assert order["payments"][0]["refunded_amount"] == 2500


def test_concurrent_partial_refunds_never_exceed_what_was_paid(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)])["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    for _ in range(ROUNDS):
        results = together(app, api.key, [lambda c, oid=oid: answer(c.post(f"/orders/{oid}/refunds", {"amount": 700}))] * 6)
        no_server_errors(results)
    order = api.get(f"/orders/{oid}").get_json()
    succeeded = [r["amount"] for r in order["refunds"] if r["status"] == "succeeded"]
    assert order["totals"]["refunded"] == sum(succeeded) == 700 * len(succeeded) <= 2500
    assert len(succeeded) >= 1
    assert not [r for r in order["refunds"] if r["status"] == "pending"]


def test_a_refund_is_reserved_before_the_provider_is_called_and_released_when_it_fails(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)], payment_provider="slow")["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    slow.provider.gate.clear()
    slow.provider.entered.clear()
    first: list = []
    thread = threading.Thread(target=lambda: first.append(answer(api.post(f"/orders/{oid}/refunds",
                                                                          {"amount": 2000}))))
    thread.start()
    assert slow.provider.entered.wait(10)
    # while the provider works, the reservation is visible and holds its amount
    order = api.get(f"/orders/{oid}").get_json()
    assert [(r["amount"], r["status"]) for r in order["refunds"]] == [(2000, "pending")]
    resp = api.post(f"/orders/{oid}/refunds", {"amount": 500})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "refund_in_progress")
    slow.provider.fail_refunds = 1
    slow.provider.gate.set()
    thread.join(20)
    assert first[0][0] == 502 and first[0][1]["code"] == "provider_unavailable"
    order = api.get(f"/orders/{oid}").get_json()
    assert [(r["amount"], r["status"]) for r in order["refunds"]] == [(2000, "failed")]
    assert order["totals"]["refunded"] == 0 and order["payments"][0]["refunded_amount"] == 0
    # released: the whole amount can be refunded again
    order = api.post(f"/orders/{oid}/refunds", {"amount": 2500}).get_json()
    assert order["totals"]["refunded"] == 2500
    assert [r["status"] for r in order["refunds"]] == ["failed", "succeeded"]


def test_a_refund_left_pending_by_a_dead_process_is_settled_by_the_sweeper(api, app, slow):
    from datetime import timedelta

    from engine import jobs

    product(api, "MUG", price=2500)
    receive(api, "MUG", 2)
    oids = [place(api, [("MUG", 1)], payment_provider="slow")["id"] for _ in range(2)]
    with app.app_context():
        for oid, age in zip(oids, (timedelta(minutes=30), timedelta(minutes=1)), strict=True):
            assert api.post(f"/orders/{oid}/pay").status_code == 200
            payment_id = db.session.execute(select(Payment.id).where(Payment.order_id == oid)).scalar_one()
            # what a process that died during the provider call leaves behind: the reservation only
            db.session.add(Refund(order_id=oid, payment_id=payment_id, amount=2500, status="pending",
                                  reason="goodwill", created_at=utcnow() - age))
        db.session.commit()
        resp = api.post(f"/orders/{oids[0]}/refunds", {"amount": 100})
        assert (resp.status_code, resp.get_json()["code"]) == (409, "refund_in_progress")
        calls = slow.provider.refund_calls
        assert jobs.retry_stale_refunds() == 1  # the young one may still be under way: left alone
        assert slow.provider.refund_calls == calls + 1
        db.session.rollback()
    stale, young = (api.get(f"/orders/{oid}").get_json() for oid in oids)
    assert [(r["status"], r["amount"]) for r in stale["refunds"]] == [("succeeded", 2500)]
    assert (stale["totals"]["refunded"], stale["payment_status"]) == (2500, "refunded")
    assert [r["status"] for r in young["refunds"]] == ["pending"] and young["totals"]["refunded"] == 0


def test_concurrent_refunds_reported_by_the_provider_are_capped_at_what_was_paid(api, app):
    from engine.services import payments

    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)])["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    with app.app_context():
        payment_id = db.session.execute(select(Payment.id).where(Payment.order_id == oid)).scalar_one()
        db.session.rollback()
    barrier, failures = threading.Barrier(8), []

    def report(i):  # eight different platform refunds of 1000 each, delivered at once
        try:
            with app.app_context():
                barrier.wait(30)
                payments.apply_refund(oid, payment_id, RefundOutcome(1000, f"platform-refund-{i}"), "on the platform")
                db.session.remove()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    order = api.get(f"/orders/{oid}").get_json()
    assert order["totals"]["refunded"] == order["payments"][0]["refunded_amount"] == 2500
    assert sum(r["amount"] for r in order["refunds"] if r["status"] == "succeeded") == 2500
    assert any(e["kind"] == "refund_beyond_paid" for e in order["events"])


def test_the_database_refuses_refunds_above_what_was_paid(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = place(api, [("MUG", 1)])["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    with app.app_context():
        for statement in (update(Payment).where(Payment.order_id == oid).values(refunded_amount=Payment.amount + 1),
                          update(Order).where(Order.id == oid).values(refunded_total=Order.paid_total + 1),
                          update(Order).where(Order.id == oid).values(paid_total=-1)):
            with pytest.raises(IntegrityError):
                db.session.execute(statement)
                db.session.flush()
            db.session.rollback()
        payment_id = db.session.execute(select(Payment.id).where(Payment.order_id == oid)).scalar_one()
        with pytest.raises(IntegrityError):  # two pending refunds of one payment
            for _ in range(2):
                db.session.add(Refund(order_id=oid, payment_id=payment_id, amount=100, status="pending", reason=""))
                db.session.flush()
        db.session.rollback()


# ---------------------------------------------------------------- cancel against ship


def _assert_shipped_or_cancelled(api, app, oid: int, sku: str, before_on_hand: int) -> str:
    order = api.get(f"/orders/{oid}").get_json()
    stock = stock_of(api, sku)
    with app.app_context():
        check_stock_invariants()
        shipments = db.session.execute(select(func.count(Shipment.id)).where(Shipment.order_id == oid)).scalar()
        shipped_units = -(db.session.execute(select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
            StockMovement.order_id == oid, StockMovement.kind == "shipment")).scalar())
        db.session.rollback()
    if order["status"] == "shipped":
        assert order["totals"]["refunded"] == 0 and order["payment_status"] == "paid"
        assert (shipments, shipped_units, stock["on_hand"]) == (1, 1, before_on_hand - 1)
    else:
        assert order["status"] == "cancelled", order["status"]
        assert order["totals"]["refunded"] == order["totals"]["paid"] and order["payment_status"] == "refunded"
        assert (shipments, shipped_units, stock["on_hand"]) == (0, 0, before_on_hand)
    assert order["allowed_actions"] == (["deliver"] if order["status"] == "shipped" else [])
    return order["status"]


def test_cancel_racing_ship_leaves_one_consistent_outcome(api, app):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 2 * ROUNDS)
    outcomes = Counter()
    for _ in range(2 * ROUNDS):
        oid = _packed(api, "MUG")["id"]
        on_hand = stock_of(api, "MUG")["on_hand"]
        results = together(app, api.key, [
            lambda c, oid=oid: answer(c.post(f"/orders/{oid}/cancel", {"reason": "changed mind"})),
            lambda c, oid=oid: answer(c.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"})),
        ] * 2)
        no_server_errors(results)
        assert Counter(status for status, _ in results)[200] == 1, results
        assert set(codes(results)) <= {"order_busy", "illegal_transition"}
        outcomes[_assert_shipped_or_cancelled(api, app, oid, "MUG", on_hand)] += 1
    assert sum(outcomes.values()) == 2 * ROUNDS


def test_a_cancel_while_the_carrier_works_is_refused_and_the_shipment_stands(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = _packed(api, "MUG")["id"]
    slow.carrier.gate.clear()
    shipped: list = []
    thread = threading.Thread(target=lambda: shipped.append(answer(api.post(
        f"/orders/{oid}/ship", {"carrier": "slowpost", "service": "standard"}))))
    thread.start()
    assert slow.carrier.entered.wait(10)
    resp = api.post(f"/orders/{oid}/cancel")
    assert (resp.status_code, resp.get_json()["code"]) == (409, "order_busy")
    slow.carrier.gate.set()
    thread.join(20)
    assert shipped[0][0] == 200 and shipped[0][1]["status"] == "shipped"
    resp = api.post(f"/orders/{oid}/cancel")
    assert (resp.status_code, resp.get_json()["code"]) == (409, "illegal_transition")
    _assert_shipped_or_cancelled(api, app, oid, "MUG", 1)


def test_a_ship_while_the_cancel_refunds_is_refused_and_the_order_ends_cancelled(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = _packed(api, "MUG", provider="slow")["id"]
    slow.provider.gate.clear()
    slow.provider.entered.clear()
    cancelled: list = []
    thread = threading.Thread(target=lambda: cancelled.append(answer(api.post(f"/orders/{oid}/cancel"))))
    thread.start()
    assert slow.provider.entered.wait(10)  # the refund is under way at the provider
    resp = api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "order_busy")
    slow.provider.gate.set()
    thread.join(20)
    assert cancelled[0][0] == 200 and cancelled[0][1]["status"] == "cancelled"
    _assert_shipped_or_cancelled(api, app, oid, "MUG", 1)


def test_a_failed_refund_leaves_the_order_as_it_was_and_free_to_ship(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 1)
    oid = _packed(api, "MUG", provider="slow")["id"]
    slow.provider.fail_refunds = 1
    resp = api.post(f"/orders/{oid}/cancel")
    assert (resp.status_code, resp.get_json()["code"]) == (502, "provider_unavailable")
    order = api.get(f"/orders/{oid}").get_json()
    assert (order["status"], order["totals"]["refunded"]) == ("packed", 0)
    assert stock_of(api, "MUG")["reserved"] == 1
    assert api.post(f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"}).status_code == 200


# ---------------------------------------------------------------- returns


@pytest.mark.parametrize("resolution", ["exchange", "refund"])
def test_concurrent_receives_of_a_return_receive_it_once(api, app, resolution):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 2 * ROUNDS)
    for _ in range(ROUNDS):
        order = _delivered(api, "MUG", 2)
        resp = api.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "MUG", "quantity": 1}],
                                                             "reason": "broken", "resolution": resolution})
        assert resp.status_code == 201, resp.get_json()
        rid = resp.get_json()["id"]
        on_hand = stock_of(api, "MUG")["on_hand"]
        results = together(app, api.key, [lambda c, rid=rid: answer(c.post(f"/returns/{rid}/receive", {}))] * 8)
        no_server_errors(results)
        assert Counter(status for status, _ in results) == {200: 1, 409: 7}, results
        assert set(codes(results)) <= {"return_closed", "refund_in_progress"}
        assert stock_of(api, "MUG")["on_hand"] == on_hand + 1  # restocked once
        with app.app_context():
            check_stock_invariants()
            ret = db.session.get(Return, rid)
            replacements = db.session.execute(select(Order).where(Order.replacement_for_id == order["id"])).scalars()
            assert len(list(replacements)) == (1 if resolution == "exchange" else 0)
            assert (ret.status, ret.resolution) == ("resolved", resolution)
            db.session.rollback()
        after = api.get(f"/orders/{order['id']}").get_json()
        assert after["totals"]["refunded"] == (2500 if resolution == "refund" else 0)
        assert after["lines"][0]["returned_quantity"] == 1


def test_a_return_whose_refund_failed_is_received_again_to_retry_the_refund_only(api, app, slow):
    product(api, "MUG", price=2500)
    receive(api, "MUG", 2)
    order = _delivered(api, "MUG", 2, provider="slow")
    rid = api.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "MUG", "quantity": 1}],
                                                       "reason": "broken", "resolution": "refund"}).get_json()["id"]
    slow.provider.fail_refunds = 1
    resp = api.post(f"/returns/{rid}/receive", {})
    assert (resp.status_code, resp.get_json()["code"]) == (502, "provider_unavailable")
    assert api.get(f"/returns/{rid}").get_json()["status"] == "received"
    on_hand = stock_of(api, "MUG")["on_hand"]
    resp = api.post(f"/returns/{rid}/receive", {})
    assert resp.status_code == 200 and resp.get_json()["status"] == "resolved"
    assert stock_of(api, "MUG")["on_hand"] == on_hand  # not restocked twice
    assert api.get(f"/orders/{order['id']}").get_json()["totals"]["refunded"] == 2500
    resp = api.post(f"/returns/{rid}/receive", {})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "return_closed")


# ---------------------------------------------------------------- 64-bit


def test_amounts_and_ids_beyond_32_bits_are_stored(api, app):
    product(api, "YACHT", price=3_000_000_000)
    receive(api, "YACHT", 4)
    order = place(api, [("YACHT", 3)])
    assert order["totals"]["total"] == 9_000_000_000
    assert api.get(f"/orders/{order['id']}").get_json()["lines"][0]["unit_price"] == 3_000_000_000
    assert api.get("/orders/2147483648").status_code == 404
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        with app.app_context():  # ids past 2**31 are handed out and stored
            for table in ("orders", "order_lines", "order_events", "payments", "retry_tasks"):
                db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 3000000000)"))
            db.session.commit()
    big = place(api, [("YACHT", 1)])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert big["id"] > 2**31
    paid = api.post(f"/orders/{big['id']}/pay").get_json()
    assert (paid["status"], paid["totals"]["paid"]) == ("paid", 3_000_000_000)


# ---------------------------------------------------------------- stock: one decision per unit


def test_concurrent_creation_of_one_sku_creates_one_product(api, app):
    body = {"sku": "TWIN", "name": "Twin", "price": 100, "currency": "EUR"}
    results = together(app, api.key, [lambda c: answer(c.post("/products", body))] * 8)
    no_server_errors(results)
    assert Counter(status for status, _ in results) == {201: 1, 409: 7}, results
    assert set(codes(results)) == {"duplicate_sku"}


@pytest.mark.parametrize("first_receipt", [True, False])
def test_concurrent_receipts_of_one_serial_receive_it_once(api, app, first_receipt):
    product(api, "CAM", price=45900, track_serials=True)
    if not first_receipt:
        receive(api, "CAM", 1, serials=["CAM-0"])
    jobs = [lambda c, loc=("MAIN" if i % 2 else f"BIN-{i}"): answer(c.post(
        "/stock/receipts", {"sku": "CAM", "quantity": 1, "serials": ["CAM-1"], "location": loc}))
        for i in range(8)]
    results = together(app, api.key, jobs)
    no_server_errors(results)
    assert Counter(status for status, _ in results) == {201: 1, 409: 7}, results
    assert stock_of(api, "CAM")["on_hand"] == (1 if first_receipt else 2)
    with app.app_context():
        check_stock_invariants()
