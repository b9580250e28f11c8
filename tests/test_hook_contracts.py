"""One test per hook, named ``test_hook_<name>``, in the style of datasette's plugin-hook tests.

Each test drives the engine through its public API to the moment the hook's contract (its hookspec
docstring and its section in docs/plugins.md) says it fires, and checks what the plugin is handed: the
argument types, the state already committed, the payload the docs promise, and when it does *not* fire.
The guard tests at the end fail for a hookspec without a ``test_hook_<name>`` test anywhere under tests/
or without its docstring; tests/test_plugin_docs.py checks its section in docs/plugins.md.

Stage hooks are delivered after commit by the background delivery (the test client waits for it), with
only the kit's ``HookRecorder`` (engine/testing/recorder.py) listening: the bundled plugins that listen to
stage hooks are disabled so each test sees the engine's own behaviour.
"""

# ruff: noqa: F811  (the tests take test_hooks' `build` fixture, imported below, as their argument)

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from conftest import order_body, place, product, receive
from test_hooks import build  # noqa: F401  (the fixture: an app with extra plugins, the bundled listeners off)
from test_plugin_docs import example_module

from engine import hookimpl, hookspecs, jobs
from engine.db import db
from engine.testing.recorder import HookRecorder

ROOT = Path(__file__).resolve().parent.parent


def order_seen(api, oid, status):
    """What the recorder keeps of an order (``engine.testing.recorder``): type, id, number and status."""
    return {"type": "Order", "id": oid, "number": api.get(f"/orders/{oid}").get_json()["number"], "status": status}


@pytest.fixture
def spied(build):
    """(recorder, api) on a shop with MUG (5 in stock, reorder point 3) and POSTER (backorderable)."""
    spy = HookRecorder()
    app, api = build([("spy", spy)])
    product(api, "MUG", price=1290, reorder_point=3, reorder_quantity=10)
    product(api, "POSTER", price=2490, allow_backorder=True)
    receive(api, "MUG", 5)
    return spy, api


STEPS = (("pay", {}), ("pick", {"scans": ["MUG"]}), ("confirm", {}), ("pack", {"scans": ["MUG"]}),
         ("ship", {"carrier": "generic", "service": "standard"}), ("deliver", {}))


def walk(api, oid, until):
    """Take order ``oid`` (one MUG) through the stages up to and including the action ``until``."""
    for action, body in STEPS:
        resp = api.post(f"/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
        if action == until:
            return resp.get_json()
    raise AssertionError(f"unknown step {until}")


def one_mug(api, **extra):
    return place(api, [("MUG", 1)], **extra)["id"]


# --------------------------------------------------------------------------- stage hooks


def test_hook_order_placed(spied):
    spy, api = spied
    body = {"customer": {"email": "ann@example.com", "name": "Ann",
                         "shipping_address": {"line1": "Street 1", "city": "Berlin", "postal_code": "10115",
                                              "country": "DE"}},
            "lines": [{"sku": "MUG", "quantity": 1}]}
    first = api.post("/orders", body, headers={"Idempotency-Key": "hook-placed-1"})
    again = api.post("/orders", body, headers={"Idempotency-Key": "hook-placed-1"})
    assert first.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    [call] = spy.of("order_placed")  # a replay of the same Idempotency-Key fires nothing again
    assert call["order"] == order_seen(api, first.get_json()["id"], "placed")
    assert set(call["event"]) >= {"id", "hook", "payload", "created_at"}
    payload = call["event"]["payload"]
    assert payload["order_id"] == first.get_json()["id"] and payload["total"] == first.get_json()["totals"]["total"]
    assert payload["currency"] == "EUR" and isinstance(payload["flags"], list)


def test_hook_order_paid(spied):
    spy, api = spied
    oid = one_mug(api)
    assert spy.of("order_paid") == []  # placed, not paid yet
    walk(api, oid, "pay")
    [call] = spy.of("order_paid")
    assert call["order"]["status"] == "paid" and call["payment"]["type"] == "Payment"
    assert call["payment"]["status"] == "paid"
    payload = call["event"]["payload"]
    assert payload["order_id"] == oid and payload["payment_id"] == call["payment"]["id"]
    assert payload["provider"] == "manual" and payload["captured"] is True and payload["amount"] > 0


def test_hook_order_on_hold(spied):
    spy, api = spied
    backordered = place(api, [("POSTER", 2)])
    assert backordered["status"] == "on_hold"
    oid = one_mug(api)
    assert api.post(f"/orders/{oid}/hold", {"reason": "check the address"}).status_code == 200
    calls = spy.of("order_on_hold")
    assert [(c["order"]["id"], c["reason"], c["order"]["status"]) for c in calls] == [
        (backordered["id"], "backorder: POSTER x2", "on_hold"), (oid, "check the address", "on_hold")]
    assert calls[1]["event"]["payload"] == {**calls[1]["event"]["payload"], "order_id": oid,
                                            "reason": "check the address"}


def test_hook_order_released(spied):
    spy, api = spied
    oid = one_mug(api)
    api.post(f"/orders/{oid}/hold", {"reason": "fraud check"})
    assert spy.of("order_released") == []
    assert api.post(f"/orders/{oid}/release").status_code == 200
    [call] = spy.of("order_released")
    assert call["order"] == order_seen(api, oid, "placed")  # back where it was held from
    held = place(api, [("POSTER", 1)])  # a backorder is released when the stock arrives
    receive(api, "POSTER", 1)
    assert [c["order"]["id"] for c in spy.of("order_released")] == [oid, held["id"]]


def test_hook_order_picked(spied):
    spy, api = spied
    oid = place(api, [("MUG", 2)])["id"]
    walk(api, oid, "pay")
    resp = api.post(f"/orders/{oid}/pick", {"scans": ["MUG"]})  # one of two units: picking, not picked
    assert resp.status_code == 200 and resp.get_json()["status"] == "picking"
    assert spy.of("order_picked") == []
    assert api.post(f"/orders/{oid}/pick", {"scans": ["MUG"]}).get_json()["status"] == "picked"
    [call] = spy.of("order_picked")  # once, when the last unit is in
    assert call["order"] == order_seen(api, oid, "picked")


def test_hook_stock_low(spied):
    spy, api = spied
    one_mug(api)  # available 5 -> 4: above the reorder point
    assert spy.of("stock_low") == []
    one_mug(api)  # 4 -> 3: at the point
    one_mug(api)  # 3 -> 2: still below, the same crossing
    [call] = spy.of("stock_low")
    assert (call["product"]["type"], call["product"]["sku"], call["available"]) == ("Product", "MUG", 3)
    assert set(call["event"]["payload"]) >= {"location", "rule_id", "alert_id", "recipients"}
    receive(api, "MUG", 10)  # above the point again: the next crossing fires again
    for _ in range(10):
        one_mug(api)
    assert [c["available"] for c in spy.of("stock_low")] == [3, 3]


def test_hook_purchase_order_created(spied):
    spy, api = spied
    one_mug(api)
    one_mug(api)  # stock low at 3: a draft purchase order for the reorder quantity
    [call] = spy.of("purchase_order_created")
    assert call["purchase_order"]["type"] == "PurchaseOrder" and call["purchase_order"]["status"] == "draft"
    assert call["event"]["payload"]["quantity"] >= 10
    place(api, [("POSTER", 1)])  # a shortfall of another product without a supplier: its own draft
    assert len(spy.of("purchase_order_created")) == 2
    place(api, [("POSTER", 1)])  # a later shortfall adds to that draft and fires nothing
    assert len(spy.of("purchase_order_created")) == 2


def fires_once_at(spied, hook, action, status):
    """``hook`` does not fire before ``action`` and fires once at it, with the order in ``status``."""
    spy, api = spied
    oid = one_mug(api)
    walk(api, oid, STEPS[[step for step, _ in STEPS].index(action) - 1][0])
    assert spy.of(hook) == []
    walk_from(api, oid, action)
    [call] = spy.of(hook)
    assert call["order"] == order_seen(api, oid, status)
    assert call["event"]["payload"]["order_id"] == oid


def test_hook_order_confirmed(spied):
    fires_once_at(spied, "order_confirmed", "confirm", "confirmed")


def test_hook_order_packed(spied):
    fires_once_at(spied, "order_packed", "pack", "packed")


def walk_from(api, oid, action):
    body = dict(STEPS)[action]
    resp = api.post(f"/orders/{oid}/{action}", body)
    assert resp.status_code == 200, (action, resp.get_json())
    return resp.get_json()


def test_hook_order_shipped(spied):
    spy, api = spied
    oid = one_mug(api)
    shipped = walk(api, oid, "ship")
    [call] = spy.of("order_shipped")
    assert call["order"] == order_seen(api, oid, "shipped")
    [shipment] = shipped["shipments"]
    assert {key: call["shipment"][key] for key in ("type", "id", "tracking_number")} == {
        "type": "Shipment", "id": shipment["id"], "tracking_number": shipment["tracking_number"]}
    assert shipment["tracking_number"] and call["event"]["payload"]["shipment_id"] == shipment["id"]


def test_hook_order_delivered(spied):
    spy, api = spied
    oid = one_mug(api)
    walk(api, oid, "ship")
    assert spy.of("order_delivered") == []
    walk_from(api, oid, "deliver")
    [call] = spy.of("order_delivered")
    assert call["order"]["id"] == oid and call["order"]["type"] == "Order"
    # without follow-ups the order is completed in the same transaction: the hook sees what is committed
    assert call["order"]["status"] in ("delivered", "completed")


def test_hook_order_completed(build):
    spy = HookRecorder()
    app, api = build([("spy", spy)], FOLLOWUP_AFTER="PT1H")
    product(api, "MUG", price=1290)
    receive(api, "MUG", 2)
    oid = one_mug(api)
    walk(api, oid, "deliver")
    assert spy.of("order_completed") == []  # the follow-up is due in an hour
    from datetime import timedelta

    from engine.db import utcnow

    with app.app_context():
        assert jobs.complete_due_followups(utcnow() + timedelta(hours=2)) == 1
        db.session.remove()
    jobs.drain(app)
    [call] = spy.of("order_completed")
    assert call["order"] == order_seen(api, oid, "completed")
    assert call["event"]["payload"].get("followup") is True


def test_hook_order_cancelled(spied):
    spy, api = spied
    unpaid = one_mug(api)
    paid = one_mug(api)
    walk(api, paid, "pay")
    for oid in (unpaid, paid):
        assert api.post(f"/orders/{oid}/cancel", {"reason": "changed mind"}).status_code == 200
    calls = spy.of("order_cancelled")
    assert [(c["order"]["id"], c["order"]["status"]) for c in calls] == [(unpaid, "cancelled"), (paid, "cancelled")]
    assert calls[0]["event"]["payload"]["payment"] == "none"
    assert calls[1]["event"]["payload"]["payment"] in ("voided", "refunded")


def returned_mug(api):
    """A delivered order of one MUG, and the refund return staff opened for it: (order id, the return)."""
    oid = one_mug(api)
    walk(api, oid, "deliver")
    resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "chipped",
                                               "resolution": "refund"})
    assert resp.status_code == 201, resp.get_json()
    return oid, resp.get_json()


def test_hook_return_requested(spied):
    spy, api = spied
    oid, order_return = returned_mug(api)
    [call] = spy.of("return_requested")
    assert call["order"]["id"] == oid and call["order_return"]["type"] == "Return"
    assert call["order_return"]["id"] == order_return["id"] and call["event"]["payload"]["source"] == "staff"


def test_hook_return_received(spied):
    spy, api = spied
    oid, order_return = returned_mug(api)
    rid = order_return["id"]
    assert spy.of("return_received") == []
    assert api.post(f"/returns/{rid}/receive", {}).status_code == 200
    [call] = spy.of("return_received")
    assert call["order_return"]["id"] == rid and call["order"]["id"] == oid
    [line] = call["event"]["payload"]["lines"]
    assert line["sku"] == "MUG" and line["quantity"] == 1 and {"condition", "location", "serials"} <= set(line)


def test_hook_refund_issued(spied):
    spy, api = spied
    oid, order_return = returned_mug(api)
    rid = order_return["id"]
    api.post(f"/returns/{rid}/receive", {})
    [call] = spy.of("refund_issued")
    assert call["amount"] == 1290 and call["payment"]["type"] == "Payment" and call["order"]["id"] == oid
    assert spy.of("order_paid")[0]["payment"]["id"] == call["payment"]["id"]  # on the payment it refunds


# --------------------------------------------------------------------------- contract hooks


def test_hook_plugin_setup(build):
    class Unready:
        calls = []

        @hookimpl
        def plugin_setup(self, app):
            return None if app.config.get("UNREADY_TOKEN") else "HOOKSHOP_UNREADY_TOKEN is not set"

        @hookimpl
        def order_flags(self, order, customer):
            Unready.calls.append("order_flags")
            return ["unready"]

        @hookimpl
        def order_placed(self, order, event):
            Unready.calls.append("order_placed")

    class Crashing:
        @hookimpl
        def plugin_setup(self, app):
            raise RuntimeError("no licence file")

    app, api = build([("unready", Unready()), ("crashing", Crashing())])
    plugins = {p["name"]: p for p in api.get("/plugins").get_json()}
    assert (plugins["unready"]["enabled"], plugins["unready"]["reason"]) == (False, "HOOKSHOP_UNREADY_TOKEN is not set")
    assert plugins["unready"]["hooks"] == ["order_flags", "order_placed", "plugin_setup"]  # listed, never called
    assert plugins["crashing"]["enabled"] is False and "setup failed" in plugins["crashing"]["reason"]
    assert "no licence file" in plugins["crashing"]["reason"]
    product(api, "MUG")
    receive(api, "MUG", 1)
    assert "unready" not in place(api, [("MUG", 1)])["flags"]
    assert Unready.calls == []  # neither its contract hooks nor its stage hooks run

    ready_app, ready_api = build([("unready", Unready())], UNREADY_TOKEN="t0ken")
    assert {p["name"]: p for p in ready_api.get("/plugins").get_json()}["unready"]["enabled"] is True


def test_hook_order_flags(build):
    class Flagger:
        @hookimpl
        def order_flags(self, order, customer):
            return ["b2b"] if customer is not None and customer.email.endswith("@corp.example") else []

    app, api = build([("flagger", Flagger())])
    product(api, "MUG")
    receive(api, "MUG", 2)
    corp = place(api, [("MUG", 1)], email="buyer@corp.example")
    other = place(api, [("MUG", 1)])
    assert "b2b" in corp["flags"] and "b2b" not in other["flags"]
    assert api.get(f"/orders/{corp['id']}").get_json()["flags"] == corp["flags"]  # stored with the order
    assert [o["id"] for o in api.get("/orders?flag=b2b").get_json()["items"]] == [corp["id"]]  # and filterable


def test_hook_register_blueprints(build):
    from flask import Blueprint, jsonify

    class Routes:
        @hookimpl
        def register_blueprints(self):
            bp = Blueprint("routes_test", __name__)
            bp.add_url_rule("/routes-test/hello", "hello", lambda: "hello")
            bp.add_url_rule("/api/v1/routes-test/ping", "ping", lambda: jsonify(pong=True))
            return [bp]

    app, api = build([("routes", Routes())])
    client = app.test_client()
    assert client.get("/routes-test/hello").get_data(as_text=True) == "hello"
    assert client.get("/api/v1/routes-test/ping").status_code == 401  # under /api/v1: the API key is checked
    assert api.get("/routes-test/ping").get_json() == {"pong": True}


def test_hook_register_commands(build):
    import click

    class Commands:
        @hookimpl
        def register_commands(self):
            @click.command("greet")
            @click.argument("name")
            def greet(name):
                click.echo(f"hello {name}")

            return [greet]

    app, _ = build([("commands", Commands())])
    result = app.test_cli_runner().invoke(args=["greet", "Ann"])
    assert result.exit_code == 0 and result.output == "hello Ann\n"


def test_hook_periodic_tasks(build):
    from datetime import UTC, datetime

    seen = []

    class Ticker:
        @hookimpl
        def periodic_tasks(self, now):
            seen.append(now)

    class Broken:
        @hookimpl
        def periodic_tasks(self, now):
            raise RuntimeError("sync endpoint down")

    app, _ = build([("ticker", Ticker()), ("broken", Broken())])
    moment = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with app.app_context():
        assert jobs.run_periodic_tasks(moment) == ["broken"]  # a failing one is isolated and named
        assert jobs.run_periodic_tasks() == ["broken"]  # each sweep calls it again, by default at utcnow()
        db.session.remove()
    assert seen[0] == moment and len(seen) == 2 and seen[1].tzinfo is not None and seen[1] > moment


def test_hook_register_task_kinds(build):
    """The docs' example kind: its tasks, enqueued in a plugin's transaction, run in the sweeper's round with
    no transaction open; a final failure is dead at once and its on_dead is called; the CLI lists it."""
    from datetime import timedelta

    from engine import retry_queue
    from engine.db import transaction, utcnow
    from engine.errors import PluginError
    from engine.plugin_api import TaskKind, enqueue_task

    example = example_module("register_task_kinds()")
    open_while_handled = []
    handler = example.ping

    def ping(tasks):
        open_while_handled.append(db.session().in_transaction())
        return handler(tasks)

    example.ping = ping
    kinds = example.register_task_kinds()
    plugin = type("Pinger", (), {"register_task_kinds": hookimpl(lambda self: [
        TaskKind(**{**kinds[0].__dict__, "handler": ping})])})()
    app, _ = build([("pinger", plugin)])
    with app.app_context():
        assert set(retry_queue.task_kinds()) >= {"my_plugin.ping"}
        with transaction():
            assert enqueue_task("my_plugin.ping", "1", {"url": "https://partner.example/ping"}) is not None
            assert enqueue_task("my_plugin.ping", "1", {"url": "https://partner.example/ping"}) is None  # idempotent
            enqueue_task("my_plugin.ping", "2", {"url": "ftp://partner.example/"})
            enqueue_task("my_plugin.ping", "3", {"url": "https://partner.example/later"},
                         at=utcnow() + timedelta(hours=1))
        assert jobs.run_periodic_tasks() == []
        assert example.SENT == ["1"] and open_while_handled == [False, False]
        statuses = {t.key: t.status for t in retry_queue.list_tasks(kind="my_plugin.ping")}
        assert statuses == {"1": "done", "2": "dead", "3": "pending"}
        db.session.remove()
    listed = app.test_cli_runner().invoke(args=["tasks", "--status", "dead", "--kind", "my_plugin.ping"])
    assert listed.exit_code == 0 and "my_plugin.ping 2 dead" in listed.output and "not an https URL" in listed.output
    twice = type("Twice", (), {"register_task_kinds": hookimpl(lambda self: kinds)})()
    with pytest.raises(PluginError, match="my_plugin.ping"):
        build([("one", plugin), ("two", twice)])


def answering(build, hook, *objects):
    """(app, api) with one extra plugin whose ``hook`` (a ``register_*`` hook) returns ``objects``, and MUG
    (price 1000, 2 in stock)."""
    plugin = type("Answering", (), {hook: hookimpl(lambda self: list(objects))})()
    app, api = build([(hook, plugin)])
    product(api, "MUG", price=1000)
    receive(api, "MUG", 2)
    return app, api


def test_hook_register_payment_providers(build):
    from test_hooks import LedgerProvider

    app, api = answering(build, "register_payment_providers", LedgerProvider())
    order = place(api, [("MUG", 1)], payment_provider="ledger")  # the provider charged at placement
    assert (order["status"], order["payment_provider"]) == ("paid", "ledger")
    assert [(p["provider"], p["reference"], p["amount"]) for p in order["payments"]] == [
        ("ledger", f"ledger-{order['id']}", 1000)]
    refused = api.post("/orders", order_body([("MUG", 1)], payment_provider="nope"))
    assert refused.status_code == 422 and "ledger" in refused.get_json()["errors"]["payment_provider"][0]


def test_hook_register_carriers(build):
    from test_hooks import PigeonCarrier

    app, api = answering(build, "register_carriers", PigeonCarrier())
    oid = place(api, [("MUG", 1)])["id"]
    rates = api.get(f"/orders/{oid}/rates").get_json()
    assert {"carrier": "pigeon", "service": "coo", "price": 350, "currency": "EUR",
            "estimated_delivery": "2030-01-02"} in rates
    assert {r["carrier"] for r in rates} == {"pigeon", "generic"}  # beside the bundled carrier
    for action, body in STEPS[:4]:
        assert api.post(f"/orders/{oid}/{action}", body).status_code == 200
    shipped = api.post(f"/orders/{oid}/ship", {"carrier": "pigeon", "service": "coo"}).get_json()
    [shipment] = shipped["shipments"]
    assert (shipped["status"], shipment["carrier"], shipment["tracking_number"]) == ("shipped", "pigeon", f"PGN-{oid}")


def test_hook_register_channels(build):
    import hashlib
    import hmac
    import json

    channels = example_module("register_channels()")  # docs/plugins.md's example, run as printed there
    app, api = build([("channels", channels)], PLUGINS_DISABLED=["accounting_export", "notify_email"])
    product(api, "MUG", price=1000)
    receive(api, "MUG", 2)
    resp = api.post("/channels", {"name": "mkt", "format": "marketplace", "secret": "s3cret-of-the-marketplace"})
    assert resp.status_code == 201, resp.get_json()
    body = json.dumps({"order_id": 991, "buyer": {"email": "bo@example.com", "name": "Bo"},
                       "ship_to": {"line1": "Street 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
                       "items": [{"sku": "MUG", "qty": 1, "price": 1000}]}).encode()

    def deliver(signature, delivery):
        return app.test_client().post("/api/v1/channels/mkt/orders", data=body, content_type="application/json",
                                      headers={"X-Marketplace-Signature": signature,
                                               "X-Marketplace-Delivery": delivery})

    assert deliver("0" * 64, "d-1").status_code == 401  # a wrong signature changes nothing
    assert api.get("/orders").get_json()["items"] == []
    signature = hmac.new(b"s3cret-of-the-marketplace", body, hashlib.sha256).hexdigest()
    first = deliver(signature, "d-1")
    assert first.status_code == 201, first.get_json()
    assert deliver(signature, "d-1").get_json()["id"] == first.get_json()["id"]  # a replay: the same order
    [order] = api.get("/orders").get_json()["items"]
    assert (order["channel"], order["external_id"]) == ("mkt", "991")


def test_hook_register_exporters(build, tmp_path):
    import json

    class JsonLinesExporter:
        format = "jsonl"

        def export(self, since, until, fh):
            fh.write(json.dumps({"since": str(since), "until": str(until)}) + "\n")

    class Exports:
        @hookimpl
        def register_exporters(self):
            return [JsonLinesExporter()]

    app, _ = build([("exports", Exports())], PLUGINS_DISABLED=["channel_webhook", "notify_email"])
    out = tmp_path / "journal.jsonl"
    result = app.test_cli_runner().invoke(args=["accounting", "export", "--format", "jsonl", "--since",
                                                "2026-01-01", "--until", "2026-01-31", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"since": "2026-01-01", "until": "2026-01-31"}


# --------------------------------------------------------------------------- guard tests


def _hookspecs() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(spec) for name, spec in vars(hookspecs).items()
            if getattr(spec, "hookshop_spec", None) is not None}


def _test_names() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^(?:    )?def (test_hook_\w+)\(", path.read_text(), re.M))
    return names


def test_every_hookspec_has_a_test_hook_test():
    missing = sorted(name for name in _hookspecs() if f"test_hook_{name}" not in _test_names())
    assert missing == [], f"hookspecs without a test_hook_<name> test: {missing}"


def test_every_hookspec_states_its_contract():
    undocumented = sorted(name for name, spec in vars(hookspecs).items()
                          if getattr(spec, "hookshop_spec", None) is not None and not (spec.__doc__ or "").strip())
    assert undocumented == []
