"""Plugin hooks: stage hooks after commit through the outbox, retries, contract hooks, discovery.

Each hook's own contract is tested by its ``test_hook_<name>`` in tests/test_hook_contracts.py; this file
tests what holds across hooks (every stage hook in one walk, committed state, retries, discovery).

The plugins here are plain objects with ``@engine.hookimpl`` methods, registered
through ``EXTRA_PLUGINS`` as if they had an entry point.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
from conftest import ApiClient, make_app, new_key, place, product, receive
from sqlalchemy import create_engine, select, text

from engine import hookimpl, jobs, outbox
from engine.app import create_app
from engine.db import db, utcnow
from engine.errors import PluginError
from engine.services.payments import PaymentOutcome, RefundOutcome
from engine.services.shipping import Rate, ShipmentInfo

BUNDLED = {"payments_stripe", "carrier_generic", "accounting_export", "channel_webhook"}


class Recorder:
    """Records every stage hook with what a *separate* connection sees as committed."""

    def __init__(self):
        self.calls: list[dict] = []
        self._engine = None

    def committed(self, table: str, row_id: int, column: str = "status"):
        # A second engine, not the session: it only sees what is committed.
        if self._engine is None:
            self._engine = create_engine(db.engine.url)
        with self._engine.connect() as conn:
            return conn.execute(text(f"SELECT {column} FROM {table} WHERE id = :id"), {"id": row_id}).scalar()

    def close(self):
        if self._engine is not None:
            self._engine.dispose()

    def _record(self, hook, event, order=None, **extra):
        entry = {"hook": hook, "event": dict(event), **extra}
        if order is not None:
            entry.update(order_id=order.id, status=order.status, committed=self.committed("orders", order.id))
        self.calls.append(entry)

    def hooks(self):
        return [c["hook"] for c in self.calls]

    @hookimpl
    def order_placed(self, order, event):
        self._record("order_placed", event, order)

    @hookimpl
    def order_paid(self, order, payment, event):
        self._record("order_paid", event, order, payment_id=payment.id, payment_status=payment.status,
                     payment_committed=self.committed("payments", payment.id))

    @hookimpl
    def order_on_hold(self, order, reason, event):
        self._record("order_on_hold", event, order, reason=reason)

    @hookimpl
    def order_released(self, order, event):
        self._record("order_released", event, order)

    @hookimpl
    def order_picked(self, order, event):
        self._record("order_picked", event, order)

    @hookimpl
    def stock_low(self, product, available, event):
        self._record("stock_low", event, sku=product.sku, available=available)

    @hookimpl
    def purchase_order_created(self, purchase_order, event):
        self._record("purchase_order_created", event, purchase_order_id=purchase_order.id,
                     product_id=purchase_order.product_id,
                     po_committed=self.committed("purchase_orders", purchase_order.id))

    @hookimpl
    def order_confirmed(self, order, event):
        self._record("order_confirmed", event, order)

    @hookimpl
    def order_packed(self, order, event):
        self._record("order_packed", event, order)

    @hookimpl
    def order_shipped(self, order, shipment, event):
        self._record("order_shipped", event, order, shipment_id=shipment.id,
                     tracking_number=shipment.tracking_number,
                     tracking_committed=self.committed("shipments", shipment.id, "tracking_number"))

    @hookimpl
    def order_delivered(self, order, event):
        self._record("order_delivered", event, order)

    @hookimpl
    def order_completed(self, order, event):
        self._record("order_completed", event, order)

    @hookimpl
    def order_cancelled(self, order, event):
        self._record("order_cancelled", event, order)

    @hookimpl
    def return_requested(self, order, order_return, event):
        self._record("return_requested", event, order, return_id=order_return.id,
                     return_committed=self.committed("returns", order_return.id))

    @hookimpl
    def return_approved(self, order, order_return, event):
        self._record("return_approved", event, order, return_id=order_return.id,
                     return_committed=self.committed("returns", order_return.id))

    @hookimpl
    def return_rejected(self, order, order_return, event):
        self._record("return_rejected", event, order, return_id=order_return.id,
                     reason=order_return.rejection_reason,
                     return_committed=self.committed("returns", order_return.id))

    @hookimpl
    def return_received(self, order, order_return, event):
        self._record("return_received", event, order, return_id=order_return.id,
                     return_committed=self.committed("returns", order_return.id))

    @hookimpl
    def refund_issued(self, order, payment, amount, event):
        self._record("refund_issued", event, order, payment_id=payment.id, amount=amount,
                     refunded_committed=self.committed("payments", payment.id, "refunded_amount"))


class Flaky:
    """Fails ``failures`` times in order_placed / order_paid, then succeeds."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[tuple[str, int]] = []

    def _maybe_fail(self, hook, event):
        self.calls.append((hook, event["id"]))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"flaky plugin down (call {len(self.calls)})")

    @hookimpl
    def order_placed(self, order, event):
        self._maybe_fail("order_placed", event)

    @hookimpl
    def order_paid(self, order, event):
        self._maybe_fail("order_paid", event)


@pytest.fixture
def build(database, tmp_path, request):
    """``build(plugins, **config)`` -> (app, api): an app with extra plugins on a clean database."""
    made = []

    def _build(plugins, **config):
        # the bundled channel_webhook, accounting_export and notify_email listen to stage hooks: keep them
        # out of the relay's bookkeeping checked here, unless a test says which plugins to disable
        if "PLUGINS_DISABLED" not in config and not os.environ.get("HOOKSHOP_PLUGINS_DISABLED"):
            config["PLUGINS_DISABLED"] = ["channel_webhook", "accounting_export", "notify_email"]
        app = make_app(database, tmp_path, request, EXTRA_PLUGINS=list(plugins), **config)
        made.append(app)
        return app, ApiClient(app.test_client(), new_key(app))

    yield _build
    for app in made:
        jobs.drain(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def recorder():
    rec = Recorder()
    yield rec
    rec.close()


def outbox_rows(app, hook=None) -> list[dict]:
    with app.app_context():
        rows = [{"id": e.id, "hook": e.hook, "status": e.status, "attempts": e.attempts, "payload": e.payload,
                 "done_plugins": e.done_plugins, "last_error": e.last_error}
                for e in outbox.events(hook=hook)]
        db.session.remove()
    return rows


# ------------------------------------------------------------------ stage hooks


def test_every_stage_hook_once_after_commit_with_its_arguments(build, recorder):
    app, api = build([("recorder", recorder)])
    product(api, "MUG", price=1290, reorder_point=3, reorder_quantity=10)
    product(api, "POSTER", price=2490, allow_backorder=True)
    product(api, "CAP", price=990)
    receive(api, "MUG", 5)
    receive(api, "CAP", 1)
    assert recorder.calls == []  # receipts fire no stage hook

    a = place(api, [("MUG", 2)])
    oid = a["id"]
    for action, body in [("pay", {}), ("pick", {"scans": ["MUG", "MUG"]}), ("confirm", {}),
                         ("pack", {"scans": ["MUG", "MUG"]}), ("ship", {"carrier": "generic", "service": "standard"}),
                         ("deliver", {})]:
        r = api.post(f"/orders/{oid}/{action}", body)
        assert r.status_code == 200, (action, r.get_json())
    r = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "too small",
                                            "resolution": "refund"})
    assert r.status_code == 201, r.get_json()
    return_id = r.get_json()["id"]
    r = api.post(f"/returns/{return_id}/receive", {})
    assert r.status_code == 200 and r.get_json()["status"] == "resolved", r.get_json()

    b = place(api, [("POSTER", 2)])
    assert b["status"] == "on_hold"
    receive(api, "POSTER", 2)
    c = place(api, [("CAP", 1)])
    assert api.post(f"/orders/{c['id']}/cancel", {"reason": "changed mind"}).status_code == 200

    a_id, b_id, c_id = oid, b["id"], c["id"]
    got = [(call["hook"], call.get("order_id") or call.get("sku") or call.get("product_id")) for call in recorder.calls]
    with app.app_context():
        from engine.models import Product

        poster_id = db.session.execute(select(Product.id).where(Product.sku == "POSTER")).scalar_one()
        mug_id = db.session.execute(select(Product.id).where(Product.sku == "MUG")).scalar_one()
        db.session.remove()
    assert got == [
        ("order_placed", a_id), ("stock_low", "MUG"), ("purchase_order_created", mug_id),
        ("order_paid", a_id), ("order_picked", a_id), ("order_confirmed", a_id), ("order_packed", a_id),
        ("order_shipped", a_id), ("order_delivered", a_id), ("order_completed", a_id),
        ("return_requested", a_id), ("return_approved", a_id), ("return_received", a_id), ("refund_issued", a_id),
        ("order_placed", b_id), ("purchase_order_created", poster_id), ("order_on_hold", b_id),
        ("order_released", b_id),
        ("order_placed", c_id), ("order_cancelled", c_id),
    ]

    # after commit: a separate connection already saw the state the stage's transaction wrote
    expected_status = {
        (a_id, "order_placed"): "placed", (a_id, "order_paid"): "paid", (a_id, "order_picked"): "picked",
        (a_id, "order_confirmed"): "confirmed", (a_id, "order_packed"): "packed",
        (a_id, "order_shipped"): "shipped", (a_id, "order_delivered"): "completed",
        (a_id, "order_completed"): "completed", (a_id, "return_requested"): "completed",
        (a_id, "return_approved"): "completed",
        (a_id, "return_received"): "completed", (a_id, "refund_issued"): "completed",
        (b_id, "order_placed"): "on_hold", (b_id, "order_on_hold"): "on_hold", (b_id, "order_released"): "placed",
        (c_id, "order_placed"): "placed", (c_id, "order_cancelled"): "cancelled",
    }
    for call in recorder.calls:
        if "order_id" in call:
            want = expected_status[(call["order_id"], call["hook"])]
            assert (call["committed"], call["status"]) == (want, want), call

    by_hook = {call["hook"]: call for call in recorder.calls}
    assert by_hook["order_paid"]["payment_committed"] == "paid" and by_hook["order_paid"]["payment_status"] == "paid"
    assert by_hook["order_shipped"]["tracking_committed"] == by_hook["order_shipped"]["tracking_number"]
    assert by_hook["order_shipped"]["tracking_number"]
    assert by_hook["stock_low"]["available"] == 3
    assert all(call["po_committed"] == "draft" for call in recorder.calls if call["hook"] == "purchase_order_created")
    assert by_hook["order_on_hold"]["reason"] == "backorder: POSTER x2"
    assert by_hook["return_requested"]["return_committed"] == "approved"  # opened by staff: approved at once
    assert by_hook["return_approved"]["return_committed"] == "approved"
    assert by_hook["return_received"]["return_committed"] == "received"
    assert by_hook["return_requested"]["return_id"] == by_hook["return_received"]["return_id"] == return_id
    assert by_hook["refund_issued"]["amount"] == 1290 and by_hook["refund_issued"]["refunded_committed"] == 1290
    assert by_hook["refund_issued"]["payment_id"] == by_hook["order_paid"]["payment_id"]
    assert [c for c in recorder.calls if c["hook"] == "order_cancelled"][0]["event"]["payload"]["payment"] == "none"

    # the event argument is the outbox's task: its id, hook, payload; every task is done after one claim
    # (written claimed by the request: the delivery thread ran it), with no plugin recorded as a
    # retry's progress (``done`` fills only when a plugin fails)
    rows = {row["id"]: row for row in outbox_rows(app)}
    assert len(rows) == len(recorder.calls)
    for call in recorder.calls:
        event = call["event"]
        assert set(event) >= {"id", "hook", "payload", "created_at"}
        assert event["hook"] == call["hook"]
        row = rows[event["id"]]
        assert (row["hook"], row["status"], row["attempts"], row["done_plugins"]) == (call["hook"], "done", 1, [])
        assert event["payload"] == row["payload"]
        if "order_id" in call:
            assert event["payload"]["order_id"] == call["order_id"]

    # nothing is due any more: a relay calls nobody again
    with app.app_context():
        assert jobs.relay_due() == 0
    assert len(recorder.calls) == 20


def test_failing_plugin_keeps_the_order_and_only_it_is_retried(build, recorder):
    flaky = Flaky(failures=1)
    app, api = build([("recorder", recorder), ("flaky", flaky)])
    product(api, "MUG")
    receive(api, "MUG", 3)

    r = api.post("/orders", {"customer": {"email": "ann@example.com", "name": "Ann",
                                          "shipping_address": {"line1": "Street 1", "city": "Berlin",
                                                               "postal_code": "10115", "country": "DE"}},
                             "lines": [{"sku": "MUG", "quantity": 1}]})
    assert r.status_code == 201, r.get_json()
    oid = r.get_json()["id"]
    assert api.get(f"/orders/{oid}").get_json()["status"] == "placed"
    assert recorder.hooks() == ["order_placed"]
    assert recorder.calls[0]["committed"] == "placed"
    assert len(flaky.calls) == 1

    [row] = outbox_rows(app, "order_placed")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["done_plugins"] == ["recorder"]
    assert "flaky" in row["last_error"] and "flaky plugin down (call 1)" in row["last_error"]

    with app.app_context():
        assert jobs.relay_due() == 1
    assert flaky.calls == [("order_placed", row["id"])] * 2
    assert recorder.hooks() == ["order_placed"]  # the plugin that succeeded is not called twice
    [row] = outbox_rows(app, "order_placed")
    assert row["status"] == "done" and row["attempts"] == 2  # two claims: the delivery thread's, the retry's
    assert row["done_plugins"] == ["recorder"]  # the progress the retry started from
    with app.app_context():
        assert jobs.relay_due() == 0
    assert len(flaky.calls) == 2


def test_a_plugin_that_always_fails_ends_dead_after_the_retry_delays(build, recorder):
    flaky = Flaky(failures=10**6)
    app, api = build([("recorder", recorder), ("flaky", flaky)], OUTBOX_RETRY_DELAYS=[60, 120])
    product(api, "MUG")
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 1)])
    r = api.post(f"/orders/{order['id']}/pay")
    assert r.status_code == 200 and r.get_json()["status"] == "paid"  # the failing hook rolled nothing back
    assert recorder.hooks() == ["order_placed", "order_paid"]
    assert len(flaky.calls) == 2

    placed = outbox_rows(app, "order_placed")[0]["id"]
    start = utcnow()
    with app.app_context():
        assert jobs.relay_due() == 0  # back-off: the first retry is 60 s away
        assert jobs.relay_due(now=start + timedelta(seconds=61)) == 2
        rows = {row["id"]: row for row in outbox_rows(app)}
        assert rows[placed]["status"] == "pending" and rows[placed]["attempts"] == 2
        assert jobs.relay_due(now=start + timedelta(seconds=100)) == 0  # the second delay is 120 s
        assert jobs.relay_due(now=start + timedelta(seconds=61 + 121)) == 2
        assert jobs.relay_due(now=start + timedelta(days=30)) == 0
    assert len(flaky.calls) == 6  # 1 by the delivery thread + 2 retries, for each of the two events
    assert recorder.hooks() == ["order_placed", "order_paid"]
    for row in outbox_rows(app):
        assert row["status"] == "dead" and row["attempts"] == 3, row
        assert row["done_plugins"] == ["recorder"]
        assert "RuntimeError" in row["last_error"]
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "paid"

    # the plugin is mended; staff put the dead events back (the retry queue's command): only it is called
    flaky.failures = 0
    result = app.test_cli_runner().invoke(args=["tasks", "requeue", "--kind", "stage_hook"])
    assert result.exit_code == 0 and "requeued 2 task(s)" in result.output, result.output
    with app.app_context():
        assert jobs.relay_due() == 2
    assert len(flaky.calls) == 8 and sorted(flaky.calls[-2:]) == sorted(flaky.calls[:2])
    assert recorder.hooks() == ["order_placed", "order_paid"]
    assert [(row["status"], row["attempts"]) for row in outbox_rows(app)] == [("done", 1), ("done", 1)]


# ------------------------------------------------------------------ contract hooks


class LedgerProvider:
    name = "ledger"

    def pay(self, order, payment_method=None, data=None):
        return PaymentOutcome(status="paid", amount=(data or {}).get("amount") or order.total - order.paid_total,
                              reference=f"ledger-{order.id}")

    def refund(self, payment, amount):
        return RefundOutcome(amount=amount, reference=f"ledger-refund-{payment.id}-{amount}")

    def void(self, payment):
        return None


class PigeonCarrier:
    name = "pigeon"
    services = ["coo"]

    def rates(self, order):
        return [Rate("pigeon", "coo", 350, order.currency, date(2030, 1, 2))]

    def create_shipment(self, order, service):
        return ShipmentInfo(tracking_number=f"PGN-{order.id}", estimated_delivery=date(2030, 1, 2), price=350)


def test_plugins_endpoint_lists_bundled_and_core_plugins(api):
    r = api.get("/plugins")
    assert r.status_code == 200
    plugins = {p["name"]: p for p in r.get_json()}
    assert BUNDLED | {"payments_manual"} <= set(plugins)
    manual = plugins["payments_manual"]
    assert manual["core"] is True and manual["enabled"] is True
    assert "register_payment_providers" in manual["hooks"]
    for name in BUNDLED:
        assert plugins[name]["core"] is False
        assert plugins[name]["module"] == f"plugins.{name}"
        assert set(plugins[name]) >= {"enabled", "reason", "hooks", "version"}
    assert "register_carriers" in plugins["carrier_generic"]["hooks"]
    # no Stripe key in the tests: the plugin says why it is off
    stripe = plugins["payments_stripe"]
    assert stripe["enabled"] is False and "STRIPE_SECRET_KEY" in stripe["reason"]
    assert api.client.get("/api/v1/plugins").status_code == 401


@pytest.mark.parametrize("how", ["environment", "config"])
def test_disabled_plugins_stay_out(build, recorder, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv("HOOKSHOP_PLUGINS_DISABLED", "recorder, carrier_generic")
        app, api = build([("recorder", recorder)])
    else:
        app, api = build([("recorder", recorder)], PLUGINS_DISABLED=["recorder", "carrier_generic"])
    plugins = {p["name"]: p for p in api.get("/plugins").get_json()}
    for name in ("recorder", "carrier_generic"):
        assert plugins[name]["enabled"] is False
        assert "HOOKSHOP_PLUGINS_DISABLED" in plugins[name]["reason"]
    assert plugins["channel_webhook"]["enabled"] is True
    product(api, "MUG")
    receive(api, "MUG", 2)
    order = place(api, [("MUG", 1)])
    assert api.get(f"/orders/{order['id']}/rates").get_json() == []  # no carrier left
    assert recorder.calls == []
    assert [row["status"] for row in outbox_rows(app)] == ["done"]  # nobody listened


class Teleporter:
    @hookimpl
    def order_teleported(self, order, event):
        pass


class Misspelled:
    @hookimpl
    def order_placed(self, ordr, event):
        pass


@pytest.mark.parametrize("name, plugin, detail", [("teleporter", Teleporter(), "order_teleported"),
                                                  ("misspelled", Misspelled(), "ordr")])
def test_an_invalid_plugin_stops_start_up_naming_itself(tmp_path, name, plugin, detail):
    with pytest.raises(PluginError) as info:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                    "EXTRA_PLUGINS": [(name, plugin)]})
    assert repr(name) in str(info.value) and detail in str(info.value)


def test_contract_hooks_at_start_up_run_in_an_app_context(tmp_path):
    """plugin_setup and register_* may read the app's settings through current_app."""
    from flask import current_app

    class Configured:
        @hookimpl
        def plugin_setup(self, app):
            assert current_app._get_current_object() is app
            return None

        @hookimpl
        def register_carriers(self):
            return [type("Named", (PigeonCarrier,), {"name": current_app.config["PIGEON_NAME"]})()]

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                      "PIGEON_NAME": "raven", "EXTRA_PLUGINS": [("configured", Configured())]})
    with app.app_context():
        from engine.plugins import registry

        assert "raven" in registry().carriers
        assert {i.name: i.enabled for i in registry().infos}["configured"] is True
