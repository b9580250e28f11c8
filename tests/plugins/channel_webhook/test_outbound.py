"""Outbound webhooks: subscriptions, signed deliveries after commit, retries, 410, disabling, SSRF."""

from __future__ import annotations

import inspect
import json
import sqlite3
from datetime import timedelta

import pytest
from conftest import ApiClient, make_app, new_key, place, product, receive
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from standardwebhooks import Webhook

from engine import jobs
from engine.db import db, utcnow


def subscribe(api, url, events, expect=201):
    resp = api.post("/webhooks/subscriptions", {"url": url, "events": events})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def periodic(app, now):
    with app.app_context():
        assert jobs.run_periodic_tasks(now) == []
        db.session.remove()


def log(api, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    resp = api.get("/webhooks/deliveries" + (f"?{qs}" if qs else ""))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["items"]


def verified(secret: str, request: dict) -> dict:
    """Checked with the standardwebhooks reference library, not the plugin's code."""
    return Webhook(secret).verify(request["body"], request["headers"])


@pytest.fixture
def shop(api):
    product(api, "MUG", price=1290, reorder_point=2)
    receive(api, "MUG", 5)
    return api


def test_down_then_500_then_410_then_accepting(shop, app, receiver):
    """The contract: one attempt per due retry, 410 disables, nothing is sent while disabled,
    a manual redelivery after enabling again arrives once, with the same webhook-id throughout."""
    api = shop
    sub = subscribe(api, receiver.url, ["order_placed"])
    secret = sub["secret"]
    assert secret.startswith("whsec_") and "secret" not in api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()
    start = utcnow()

    order = place(api, [("MUG", 1)])  # the receiver is down: the first attempt fails at once
    [delivery] = log(api)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["last_status_code"] is None
    assert "Connection" in delivery["last_error"] or "refused" in delivery["last_error"].lower()
    assert receiver.received == []

    receiver.start()
    receiver.script = [500]
    periodic(app, start + timedelta(seconds=2))  # the first retry is 5 s (±20 %) away: not yet
    assert receiver.received == []
    periodic(app, start + timedelta(seconds=7))
    assert len(receiver.received) == 1
    [delivery] = log(api)
    assert delivery["status"] == "pending" and delivery["attempts"] == 2 and delivery["last_status_code"] == 500
    periodic(app, start + timedelta(seconds=8))  # the next one is 30 s (±20 %) after that attempt
    assert len(receiver.received) == 1

    receiver.script = [410]
    periodic(app, start + timedelta(seconds=7 + 37))
    assert len(receiver.received) == 2
    [delivery] = log(api)
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 410
    state = api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()
    assert state["status"] == "disabled" and "410" in state["disabled_reason"]
    assert [s["id"] for s in api.get("/webhooks/subscriptions?status=disabled").get_json()] == [sub["id"]]

    periodic(app, start + timedelta(days=4))
    place(api, [("MUG", 1)])  # nothing is recorded for a disabled subscription
    assert len(receiver.received) == 2 and len(log(api)) == 1
    refused = api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
    assert refused.status_code == 409 and refused.get_json()["code"] == "subscription_disabled"

    resp = api.client.patch(f"/api/v1/webhooks/subscriptions/{sub['id']}", json={"active": True},
                            headers=api._headers(None))
    assert resp.status_code == 200 and resp.get_json()["status"] == "active"
    resp = api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver")
    assert resp.status_code == 200, resp.get_json()
    detail = resp.get_json()
    assert detail["status"] == "delivered" and detail["attempts"] == 4
    assert [(a["number"], a["status_code"], a["manual"]) for a in detail["attempt_log"]] == [
        (1, None, False), (2, 500, False), (3, 410, False), (4, 200, True)]
    assert all(a["duration_ms"] >= 0 for a in detail["attempt_log"])
    assert len(receiver.received) == 3
    periodic(app, start + timedelta(days=8))
    assert len(receiver.received) == 3  # delivered: never again

    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert ids == {detail["webhook_id"]}
    bodies = [verified(secret, r) for r in receiver.received]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["type"] == "order_placed" and bodies[0]["data"]["order"]["id"] == order["id"]
    assert bodies[0]["data"]["order_id"] == order["id"] and bodies[0]["data"]["total"] == 1290
    assert {r["headers"]["content-type"] for r in receiver.received} == {"application/json"}


def test_every_subscribed_stage_arrives_once_signed_after_commit(shop, app, receiver, database):
    """Each event arrives exactly once per subscription; the receiver, on its own connection, already
    sees the change committed, and (SQLite) can take the write lock: no transaction is open while
    the engine waits for the answer. (The receiver waits up to 10 s for a writer that finishes on its
    own, such as the request that fired the event serialising its answer beside the delivery thread;
    a sender holding the lock while it waits for this answer never finishes, so that still fails.)"""
    api = shop
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    other = create_engine(url, poolclass=NullPool) if database == "postgresql" else None

    def look(entry):
        body = json.loads(entry["body"])
        order_id = (body["data"].get("order") or {}).get("id")
        if database == "sqlite":
            conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # fails if the sender held a write transaction
                status = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        else:
            with other.connect() as conn:
                status = conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": order_id}).fetchone()
        return status[0] if status else None

    receiver.on_request = look
    receiver.start()
    everything = subscribe(api, receiver.url, ["*"])
    paid_only = subscribe(api, receiver.url.replace("/hooks", "/paid"), ["order_paid", "stock_low"])

    order = place(api, [("MUG", 3)])  # available 5 -> 2: at the reorder point, stock_low fires
    oid = order["id"]
    for action, body in (("pay", {}), ("pick", {"scans": ["MUG"] * 3}), ("confirm", {}),
                         ("pack", {"scans": ["MUG"] * 3}), ("ship", {"carrier": "generic", "service": "standard"}),
                         ("deliver", {})):
        resp = api.post(f"/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
    periodic(app, utcnow() + timedelta(days=5))  # nothing is due: everything went out at once

    got = [(r["path"], json.loads(r["body"])["type"]) for r in receiver.received]
    stages = ["order_placed", "stock_low", "order_paid", "order_picked", "order_confirmed", "order_packed",
              "order_shipped", "order_delivered", "order_completed"]
    assert [t for p, t in got if p == "/hooks"] == stages
    assert sorted(t for p, t in got if p == "/paid") == ["order_paid", "stock_low"]
    expected_status = {"order_placed": "placed", "order_paid": "paid", "order_picked": "picked",
                       "order_confirmed": "confirmed", "order_packed": "packed", "order_shipped": "shipped"}
    for entry in receiver.received:
        body = json.loads(entry["body"])
        if body["type"] in expected_status:
            assert entry["seen"] == expected_status[body["type"]], body["type"]
        secret = everything["secret"] if entry["path"] == "/hooks" else paid_only["secret"]
        assert verified(secret, entry)["type"] == body["type"]
    assert len({r["headers"]["webhook-id"] for r in receiver.received}) == len(receiver.received)
    shipped = next(json.loads(r["body"]) for r in receiver.received if json.loads(r["body"])["type"] == "order_shipped")
    assert shipped["data"]["shipment"]["tracking_number"] and shipped["data"]["order"]["status"] in ("shipped",
                                                                                                      "delivered",
                                                                                                      "completed")
    low = next(json.loads(r["body"]) for r in receiver.received if json.loads(r["body"])["type"] == "stock_low")
    assert low["data"]["sku"] == "MUG" and low["data"]["available"] == 2 and low["data"]["product"]["sku"] == "MUG"
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in log(api, limit=100))

    # the outbox relays an event at least once: a second run of the same event records nothing new
    with app.app_context():
        from plugins.channel_webhook import outbound

        event_id = log(api, event_type="order_paid")[0]["event_id"]
        assert outbound.record_event({"id": event_id, "hook": "order_paid", "payload": {}}, {}) == []
        db.session.remove()
    assert len(receiver.received) == len(got)


def test_retries_back_off_for_about_three_days_then_disable_and_tell_staff(shop, app, receiver, caplog):
    api = shop
    app.config["CHANNEL_WEBHOOK_RETRY_JITTER"] = 0  # the plugin reads its settings at call time
    receiver.default = 503
    receiver.start()
    sub = subscribe(api, receiver.url, ["order_placed"])
    start = utcnow()
    place(api, [("MUG", 1)])
    assert len(receiver.received) == 1
    delays = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400]
    moment = start
    for index, delay in enumerate(delays):
        periodic(app, moment + timedelta(seconds=delay - 1))
        assert len(receiver.received) == index + 1, f"retry {index + 1} came early"
        moment += timedelta(seconds=delay + 1)
        periodic(app, moment)
        assert len(receiver.received) == index + 2, f"retry {index + 1} did not come"
    total = moment - start
    assert timedelta(days=3) < total < timedelta(days=3, hours=6)
    [delivery] = log(api)
    assert delivery["status"] == "failed" and delivery["attempts"] == 13
    state = api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()
    assert state["status"] == "disabled" and "every delivery failed for" in state["disabled_reason"]
    assert state["consecutive_failures"] == 13
    assert any("disabled" in r.getMessage() and receiver.url in r.getMessage() for r in caplog.records
               if r.levelname == "WARNING")
    periodic(app, moment + timedelta(days=30))
    assert len(receiver.received) == 13


def test_jitter_spreads_the_retries(shop, app, receiver):
    api = shop
    subscribe(api, receiver.url, ["order_placed"])  # down: every first attempt fails
    for _ in range(4):
        place(api, [("MUG", 1)])
    with app.app_context():
        from plugins.channel_webhook.models import Delivery, DeliveryAttempt

        # from the failed attempt, not the delivery's creation: a loaded machine may attempt a second later
        rows = db.session.execute(db.select(DeliveryAttempt.at, Delivery.next_attempt_at)
                                  .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)).all()
        gaps = [(nxt - attempted).total_seconds() for attempted, nxt in rows]
        db.session.remove()
    assert all(3.9 <= gap <= 6.1 for gap in gaps), gaps  # 5 s ± 20 %
    assert len({round(gap, 3) for gap in gaps}) > 1


def test_a_success_resets_the_run_of_failures(shop, app, receiver):
    api = shop
    sub = subscribe(api, receiver.url, ["order_placed"])
    place(api, [("MUG", 1)])
    assert api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()["consecutive_failures"] == 1
    receiver.start()
    periodic(app, utcnow() + timedelta(seconds=10))
    state = api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()
    assert state["consecutive_failures"] == 0 and state["failing_since"] is None and state["last_success_at"]
    assert len(receiver.received) == 1


# ----------------------------------------------------------------- subscriptions and SSRF


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://192.168.0.10/x", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/x", "http://0.0.0.0/x", "http://100.64.0.1/x",
                                 "http://[fe80::1]/x", "http://[::ffff:127.0.0.1]/x"])
def test_private_targets_are_refused_unless_allowed(tmp_path, request, url):
    app = make_app("sqlite", tmp_path, request)  # production default: no private targets
    api = ApiClient(app.test_client(), new_key(app))
    resp = api.post("/webhooks/subscriptions", {"url": url, "events": ["order_paid"]})
    assert resp.status_code == 422 and "url" in resp.get_json()["errors"], resp.get_json()
    assert api.get("/webhooks/subscriptions").get_json() == []


def test_subscription_input_is_checked(shop, app, receiver):
    api = shop
    for body, field in (({"url": "ftp://example.com/x", "events": ["order_paid"]}, "url"),
                        ({"url": "http://user:pw@127.0.0.1/x", "events": ["order_paid"]}, "url"),
                        ({"url": "http://10.0.0.1/x", "events": ["order_paid"]}, "url"),  # only loopback allowed
                        ({"url": receiver.url, "events": ["order_teleported"]}, "events"),
                        ({"url": receiver.url, "events": []}, "events"),
                        ({"url": receiver.url}, "events"),
                        ({"url": receiver.url, "events": ["order_paid"], "secret": "mine"}, "secret")):
        resp = api.post("/webhooks/subscriptions", body)
        assert resp.status_code == 422 and field in resp.get_json()["errors"], (body, resp.get_json())
    assert subscribe(api, "http://93.184.215.14/hooks", ["*"])["status"] == "active"  # a public address
    assert api.client.post("/api/v1/webhooks/subscriptions", json={"url": receiver.url,
                                                                   "events": ["*"]}).status_code == 401


def test_a_target_that_turns_private_is_not_called(shop, app, receiver):
    """The address is checked again when sending (DNS may answer differently by then)."""
    api = shop
    receiver.start()
    sub = subscribe(api, receiver.url, ["order_placed"])
    app.config["CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = None  # loopback is no longer allowed
    place(api, [("MUG", 1)])
    assert receiver.received == []
    [delivery] = log(api)
    assert delivery["status"] == "pending" and delivery["last_error"].startswith("refused:")
    assert delivery["subscription_id"] == sub["id"]


def test_secret_rotation_signs_with_both_for_a_while(shop, app, receiver):
    api = shop
    receiver.start()
    sub = subscribe(api, receiver.url, ["order_placed"])
    resp = api.post(f"/webhooks/subscriptions/{sub['id']}/secret", {"keep_previous_hours": 24})
    assert resp.status_code == 200
    new_secret = resp.get_json()["secret"]
    assert new_secret != sub["secret"] and resp.get_json()["previous_secret_expires_at"]
    place(api, [("MUG", 1)])
    [entry] = receiver.received
    assert len(entry["headers"]["webhook-signature"].split()) == 2
    verified(new_secret, entry)
    verified(sub["secret"], entry)


def test_subscriptions_can_be_changed_disabled_and_deleted(shop, app, receiver):
    api = shop
    receiver.start()
    sub = subscribe(api, receiver.url, ["order_paid"])
    headers = api._headers(None)
    resp = api.client.patch(f"/api/v1/webhooks/subscriptions/{sub['id']}",
                            json={"events": ["order_placed"], "description": "ERP"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["events"] == ["order_placed"]
    place(api, [("MUG", 1)])
    assert len(receiver.received) == 1
    resp = api.client.patch(f"/api/v1/webhooks/subscriptions/{sub['id']}", json={"active": False}, headers=headers)
    assert resp.get_json()["status"] == "disabled" and resp.get_json()["disabled_reason"] == "disabled by staff"
    place(api, [("MUG", 1)])
    assert len(receiver.received) == 1
    assert api.client.delete(f"/api/v1/webhooks/subscriptions/{sub['id']}", headers=headers).status_code == 204
    assert api.get(f"/webhooks/subscriptions/{sub['id']}").status_code == 404
    assert log(api) == []
    assert api.get("/webhooks/deliveries/1").status_code == 404
    assert api.post("/webhooks/deliveries/1/redeliver").status_code == 404


def test_the_plugin_keeps_the_hook_contracts():
    import plugins.channel_webhook as plugin
    from engine.testing import check_plugin

    hooks = check_plugin(plugin)
    assert {"plugin_setup", "register_channels", "register_blueprints", "register_commands",
            "register_task_kinds"} <= set(hooks)
    from engine import hookspecs
    from plugins.channel_webhook.outbound import EVENTS

    stage_hooks = [name for name, spec in vars(hookspecs).items()
                   if getattr(spec, "hookshop_spec", None) is not None and "event" in inspect.signature(spec).parameters]
    assert len(stage_hooks) >= 18 and list(EVENTS) == stage_hooks  # every stage event, in the stages' order
    assert set(EVENTS) <= set(hooks)  # ... can be subscribed to, and is forwarded
    for name in EVENTS:  # with the spec's own argument names (pluggy passes exactly those)
        impl = getattr(plugin, name)
        assert list(inspect.signature(impl).parameters) == list(inspect.signature(getattr(hookspecs, name)).parameters)


def test_return_decisions_are_forwarded_with_the_return(shop, app, receiver):
    """return_approved and return_rejected reach subscribers like every other stage, with the order and
    the return in ``data`` (the forwarding hooks are made from the core's stage hookspecs in one loop)."""
    api = shop
    receiver.start()
    sub = subscribe(api, receiver.url, ["return_approved", "return_rejected"])
    oid = place(api, [("MUG", 2)])["id"]
    for action, body in (("pay", {}), ("pick", {"scans": ["MUG"] * 2}), ("confirm", {}),
                         ("pack", {"scans": ["MUG"] * 2}), ("ship", {"carrier": "generic", "service": "standard"}),
                         ("deliver", {})):
        assert api.post(f"/orders/{oid}/{action}", body).status_code == 200, action
    returns = []
    for _ in range(2):
        resp = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "chipped",
                                                   "resolution": "refund"})
        assert resp.status_code == 201, resp.get_json()
        returns.append(resp.get_json()["id"])
    # staff's own returns are approved at once (no RETURNS_REQUIRE_APPROVAL); an approved one can be rejected
    assert api.post(f"/returns/{returns[1]}/reject", {"reason": "outside the window"}).status_code == 200

    bodies = [verified(sub["secret"], r) for r in receiver.received]
    got = sorted((b["type"], b["data"]["order_return"]["id"], b["data"]["order"]["id"]) for b in bodies)
    assert got == [("return_approved", returns[0], oid), ("return_approved", returns[1], oid),
                   ("return_rejected", returns[1], oid)]
    rejected = next(b for b in bodies if b["type"] == "return_rejected")
    assert rejected["data"]["order_return"]["status"] == "rejected"


@pytest.mark.parametrize("setting, value", [("CHANNEL_WEBHOOK_RETRY_DELAYS", "5,soon"),
                                            ("CHANNEL_WEBHOOK_TIMEOUT", "-1"),
                                            ("CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS", "the office")])
def test_an_unreadable_setting_disables_the_plugin_and_says_why(tmp_path, request, setting, value):
    app = make_app("sqlite", tmp_path, request, **{setting: value})
    api = ApiClient(app.test_client(), new_key(app))
    info = {p["name"]: p for p in api.get("/plugins").get_json()}["channel_webhook"]
    assert info["enabled"] is False and "HOOKSHOP_CHANNEL_WEBHOOK_" in info["reason"]
    assert api.get("/channels").status_code == 404


def test_an_idempotency_key_replay_creates_one_subscription(shop, app, receiver):
    api = shop
    body = {"url": receiver.url, "events": ["order_paid"]}
    first = api.post("/webhooks/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    again = api.post("/webhooks/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers.get("Idempotent-Replayed") == "true"
    assert len(api.get("/webhooks/subscriptions").get_json()) == 1


def test_deliveries_are_tasks_of_the_cores_retry_queue(shop, app, receiver):
    """A delivery's retries are its task's (kind ``channel_webhook.delivery``): 410 makes it dead at once, staff
    see it in ``hookshop tasks`` and /healthz; a manual redelivery that arrives ends the task."""
    api = shop
    receiver.start()
    receiver.script = [410]
    sub = subscribe(api, receiver.url, ["order_placed"])
    place(api, [("MUG", 1)])
    [delivery] = log(api)
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 410
    listed = app.test_cli_runner().invoke(args=["tasks", "--status", "dead", "--kind", "channel_webhook.delivery"])
    assert listed.exit_code == 0 and f"channel_webhook.delivery {delivery['id']} dead attempts=1" in listed.output
    health = app.test_client().get("/healthz").get_json()["tasks"]
    assert health["dead_by_kind"] == {"channel_webhook.delivery": 1}
    resp = api.client.patch(f"/api/v1/webhooks/subscriptions/{sub['id']}", json={"active": True},
                            headers=api._headers(None))
    assert resp.status_code == 200
    assert api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver").get_json()["status"] == "delivered"
    assert app.test_client().get("/healthz").get_json()["tasks"]["dead"] == 0
