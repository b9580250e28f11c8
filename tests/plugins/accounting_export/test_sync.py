"""Cloud sync against a loopback HTTP endpoint that fails sometimes (errors, a lost answer): every entry
arrives, the endpoint's ledger books each exactly once, failures back off and are visible per entry."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from conftest import place
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine.db import db, utcnow
from engine.jobs import run_periodic_tasks
from plugins.accounting_export import sync
from plugins.accounting_export.models import JournalEntry, SyncState

from .conftest import TAX
from .helpers import walk

SECRET = "s3cret-sync"


class LedgerEndpoint:
    """A cloud accounting endpoint: checks the Standard Webhooks signature and timestamp with the
    ``standardwebhooks`` package (the key being the secret's bytes), books entries by idempotency key (a key seen
    before is a duplicate, booked once), and misbehaves as ``plan`` says, request by request:
    ``500`` (nothing booked), ``slow`` (booked, but the answer comes after the client gave up),
    ``lost`` (booked, then a 503 as from a proxy that lost the answer), ``reject`` (the first entry
    refused), ``ok``."""

    def __init__(self, plan=()):
        self.plan = list(plan)
        self.booked: dict[str, dict] = {}
        self.bookings: Counter = Counter()  # how often each key was booked (must stay 1)
        self.received: Counter = Counter()  # how often each key arrived
        self.requests: list[tuple[str, list[str]]] = []
        self.message_ids: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        try:
            Webhook(SECRET.encode()).verify(body, dict(request.headers))
        except WebhookVerificationError:
            return Response('{"error": "bad signature"}', 401)(environ, start_response)
        self.message_ids.append(request.headers["webhook-id"])
        entries = json.loads(body)["entries"]
        keys = [e["idempotency_key"] for e in entries]
        with self.lock:
            behaviour = self.plan.pop(0) if self.plan else "ok"
            self.requests.append((behaviour, keys))
            if behaviour == "500":
                return Response("database unavailable", 500)(environ, start_response)
            rejected = {}
            for entry in entries:
                key = entry["idempotency_key"]
                if behaviour == "reject" and not rejected:
                    rejected[key] = "account Income:Refunds is not mapped"
                    continue
                self.received[key] += 1
                assert sum(p["amount"] for p in entry["postings"]) == 0
                if key not in self.booked:
                    self.booked[key] = entry
                    self.bookings[key] += 1
        if behaviour == "lost":
            return Response("upstream timed out", 503)(environ, start_response)
        if behaviour == "slow":
            time.sleep(1.6)  # longer than the client's timeout: the answer is lost, the entries are booked
        return Response(json.dumps({"booked": len(keys), "rejected": rejected}), 200,
                        mimetype="application/json")(environ, start_response)


@pytest.fixture
def endpoint():
    ledger = LedgerEndpoint()
    server = make_server("127.0.0.1", 0, ledger, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ledger.url = f"http://127.0.0.1:{server.server_port}/journal"
    yield ledger
    server.shutdown()
    thread.join(5)


@pytest.fixture
def app_config(endpoint):
    return {**TAX, "ACCOUNTING_SYNC_URL": endpoint.url, "ACCOUNTING_SYNC_SECRET": SECRET, "ACCOUNTING_SYNC_BATCH": "4",
            "ACCOUNTING_SYNC_RETRY_DELAYS": "5,20,60", "ACCOUNTING_SYNC_TIMEOUT": "1"}


def _some_entries(api, n=4):
    for i in range(n):
        order = place(api, [("MUG", 1 + i % 2), ("BOOK-TALE", 1)], email=f"s{i}@example.com")
        walk(api, order, "shipped")


def _run_until_settled(app, now, rounds=40, step=timedelta(seconds=30)):
    with app.app_context():
        for _ in range(rounds):
            run_periodic_tasks(now)
            pending = db.session.execute(db.select(db.func.count()).select_from(SyncState)
                                         .where(SyncState.status == "pending")).scalar_one()
            db.session.commit()
            if not pending:
                return now
            now += step
    raise AssertionError("the sync never settled")


def _uids(app):
    with app.app_context():
        return set(db.session.execute(db.select(JournalEntry.uid)).scalars())


def test_every_entry_arrives_once_through_failures_and_a_lost_answer(shop, app, endpoint):
    _some_entries(shop)
    # batches of 4 by entry id: A fails then goes; B is booked but its answer times out, then goes again;
    # C is booked but answered 503, then goes again; D fails once
    endpoint.plan = ["500", "ok", "slow", "ok", "lost", "ok", "500", "ok"]
    now = _run_until_settled(app, utcnow())
    uids = _uids(app)
    assert len(uids) == 15  # the 3 stock receipts (posted by the same periodic task), 4 x payment, sale, shipment
    # every entry is in the endpoint's ledger, booked exactly once
    assert set(endpoint.booked) == uids and set(endpoint.bookings.values()) == {1}
    # the batches whose answer was lost were sent again (duplicates to the endpoint); nothing else was
    lost = [k for behaviour, keys in endpoint.requests if behaviour in ("slow", "lost") for k in keys]
    assert len(lost) == 8 and {k: n for k, n in endpoint.received.items() if n > 1} == dict.fromkeys(lost, 2)
    assert all(len(keys) <= 4 for _, keys in endpoint.requests)
    # a batch sent again is the same Standard Webhooks message: the same webhook-id
    for i, (behaviour, keys) in enumerate(endpoint.requests):
        if behaviour in ("slow", "lost"):
            assert endpoint.requests[i + 1][1] == keys and endpoint.message_ids[i + 1] == endpoint.message_ids[i]
    status = shop.get("/accounting/sync").get_json()
    assert status["enabled"] and status["counts"] == {"pending": 0, "synced": 15, "failed": 0, "rejected": 0}
    entries = shop.get("/accounting/entries?limit=500").get_json()["items"]
    assert {e["sync"]["status"] for e in entries} == {"synced"}
    assert max(e["sync"]["attempts"] for e in entries) >= 2  # the failed batches were retried
    # new entries go out in the next round; the synced ones are never sent again
    order_id = next(e["order_id"] for e in entries if e["kind"] == "sale")
    assert shop.post(f"/orders/{order_id}/refunds", {"amount": 100}).status_code == 200
    sent_before = len(endpoint.requests)
    _run_until_settled(app, now + timedelta(minutes=1))
    assert endpoint.requests[sent_before:] == [("ok", [endpoint.requests[-1][1][0]])]
    assert set(endpoint.booked) == _uids(app) and set(endpoint.bookings.values()) == {1}


def test_failing_endpoint_backs_off_then_gives_up_and_retry_failed_requeues(shop, app, endpoint):
    _some_entries(shop, 1)
    endpoint.plan = ["500"] * 4  # the first try and the three retries all fail
    now = utcnow() + timedelta(seconds=1)  # the stock receipts this round posts are due at once too
    with app.app_context():
        app.extensions["accounting_export"].sync_batch = 100  # one batch
        run_periodic_tasks(now)
        row = db.session.execute(db.select(SyncState).order_by(SyncState.entry_id)).scalars().first()
        # back-off: the next attempt is 5 s away, nothing is sent before
        assert row.status == "pending" and row.attempts == 1 and "HTTP 500" in row.last_error
        sent = len(endpoint.requests)
        run_periodic_tasks(now + timedelta(seconds=4))
        assert len(endpoint.requests) == sent
        for delay in (5, 25, 85):  # 5, then 20 and 60 seconds later
            run_periodic_tasks(now + timedelta(seconds=delay))
        db.session.commit()
        states = {s.status for s in db.session.execute(db.select(SyncState)).scalars()}
        assert states == {"failed"}
    status = shop.get("/accounting/sync").get_json()
    assert status["counts"]["failed"] == 6 and "HTTP 500" in status["last_error"]
    assert [len(keys) for _, keys in endpoint.requests] == [6, 6, 6, 6]
    assert endpoint.booked == {}
    result = app.test_cli_runner().invoke(args=["accounting", "sync", "--retry-failed"])
    assert result.exit_code == 0 and "6 failed entries queued again" in result.output
    assert "6 entries synced" in result.output and "synced 6" in result.output
    assert set(endpoint.booked) == _uids(app)


def test_rejected_entries_and_a_wrong_secret_are_visible(shop, app, endpoint):
    _some_entries(shop, 1)
    endpoint.plan = ["reject"]
    _run_until_settled(app, utcnow())
    counts = shop.get("/accounting/sync").get_json()["counts"]
    assert counts["rejected"] == 1 and counts["synced"] == 5  # 3 entries of the order, 3 stock receipts
    rejected = [e for e in shop.get("/accounting/entries").get_json()["items"] if e["sync"]["status"] == "rejected"]
    assert len(rejected) == 1 and "not mapped" in rejected[0]["sync"]["last_error"]
    assert rejected[0]["uid"] not in endpoint.booked

    with app.app_context():
        app.extensions["accounting_export"].sync_secret = "wrong"
        walk(shop, place(shop, [("CAP", 1)]), "paid")
        run_periodic_tasks(utcnow())
        row = db.session.execute(db.select(SyncState).where(SyncState.status == "pending")).scalars().one()
        assert row.attempts == 1 and "HTTP 401" in row.last_error


def test_sync_is_off_without_an_url(api, app):
    from conftest import product, receive

    product(api, "MUG", price=1190)
    receive(api, "MUG", 2)
    walk(api, place(api, [("MUG", 1)]), "paid")
    with app.app_context():
        app.extensions["accounting_export"].sync_url = None
        assert sync.push_due(utcnow())["enabled"] is False
    status = api.get("/accounting/sync").get_json()
    assert not status["enabled"] and "SYNC_URL" in status["reason"] and status["counts"]["pending"] == 1


def test_the_sync_is_a_kind_of_the_cores_retry_queue(shop, app, endpoint):
    """Failed entries are dead tasks; ``hookshop tasks requeue --kind accounting_export.sync`` puts them back
    and their sync rows say pending again."""
    _some_entries(shop, 1)
    endpoint.plan = ["500"] * 4
    now = utcnow() + timedelta(seconds=1)
    with app.app_context():
        app.extensions["accounting_export"].sync_batch = 100
        for delay in (0, 5, 25, 85):
            run_periodic_tasks(now + timedelta(seconds=delay))
        db.session.remove()
    assert shop.get("/accounting/sync").get_json()["counts"]["failed"] == 6
    dead = app.test_cli_runner().invoke(args=["tasks", "--status", "dead", "--kind", "accounting_export.sync"])
    assert dead.exit_code == 0 and "accounting_export.sync: pending 0, running 0, done 0, dead 6" in dead.output
    back = app.test_cli_runner().invoke(args=["tasks", "requeue", "--kind", "accounting_export.sync"])
    assert back.exit_code == 0 and "requeued 6 task(s)" in back.output
    assert shop.get("/accounting/sync").get_json()["counts"]["pending"] == 6
    _run_until_settled(app, utcnow() + timedelta(seconds=1))
    assert set(endpoint.booked) == _uids(app)
