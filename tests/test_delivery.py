"""Stage hooks never run in the request.

Embedded mode: after its commit a request hands its events to the app's background delivery thread
and answers at once; a blocked, failing or slow plugin (or webhook receiver) never holds the answer
back. Production mode: when Redis cannot be reached the order is still a 201 and its events wait in
the outbox for the sweeper. A process that dies before delivering leaves leased rows the sweeper
takes over after the lease.

The tests synchronise on ``threading.Event``s and ``jobs.drain(app)``, never on elapsed time. Each
``Event.wait`` is bounded so that a regression (a request that waits for its hooks) fails the test
instead of hanging it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
from conftest import ApiClient, make_app, new_key, order_body, place, product, receive, service_missing
from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import event as sa_event
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine import hookimpl, jobs
from engine import outbox as stage_events
from engine.db import as_utc, db, utcnow

# the bundled plugins that listen to stage hooks stay out of the bookkeeping checked here
OTHER_LISTENERS = ["channel_webhook", "accounting_export", "notify_email"]
WAIT = 20  # seconds: the bound of every wait for something that should happen at once


@pytest.fixture
def build(database, tmp_path, request):
    """``build(plugins, **config)`` -> ``(app, api, quick)``: ``api`` waits for the stage hooks a
    request fired (the test suite's client), ``quick`` is a plain Flask test client that does not."""
    made = []

    def _build(plugins=(), **config):
        config.setdefault("PLUGINS_DISABLED", OTHER_LISTENERS)
        app = make_app(database, tmp_path, request, EXTRA_PLUGINS=list(plugins), **config)
        made.append(app)
        key = new_key(app)
        return app, ApiClient(app.test_client(), key), ApiClient(FlaskClient(app, app.response_class), key)

    yield _build
    for app in made:
        jobs.drain(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def outbox(app, hook="order_placed") -> list[dict]:
    with app.app_context():
        rows = [{"id": e.id, "status": e.status, "attempts": e.attempts, "done_plugins": e.done_plugins,
                 "next_attempt_at": as_utc(e.next_attempt_at), "last_error": e.last_error,
                 "leased_until": as_utc(e.leased_until) if e.leased_until else None}
                for e in stage_events.events(hook=hook)]
        db.session.remove()
    return rows


def shop(api, quantity=10):
    product(api, "MUG", price=1290)
    receive(api, "MUG", quantity)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """Records each order_placed: the event id and the order id."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    @hookimpl
    def order_placed(self, order, event):
        self.calls.append((event["id"], order.id))


# ----------------------------------------------------------------- the background delivery thread


class Gate:
    """order_placed waits until the test opens the gate (at most WAIT seconds)."""

    def __init__(self):
        self.entered, self.opened, self.left = threading.Event(), threading.Event(), threading.Event()
        self.calls: list[int] = []
        self.thread = None
        self.app = None

    @hookimpl
    def order_placed(self, order, event):
        self.thread, self.app = threading.current_thread(), current_app._get_current_object()
        self.calls.append(event["id"])
        self.entered.set()
        self.opened.wait(WAIT)
        self.left.set()


def test_post_orders_answers_while_its_stage_hook_is_still_blocked(build):
    gate = Gate()
    app, api, quick = build([("gate", gate)])
    shop(api)

    resp = quick.post("/orders", order_body([("MUG", 1)]))
    assert resp.status_code == 201, resp.get_json()
    assert not gate.left.is_set()  # the answer came while the hook had not returned
    assert gate.entered.wait(WAIT)  # ... because another thread is running it
    assert gate.thread is not threading.current_thread() and gate.thread.daemon
    assert gate.thread.name == "hookshop-delivery" and gate.app is app

    # meanwhile: the task is leased to this process (the sweeper leaves it alone), and the shop goes on,
    # writes included (the waiting hook holds no transaction, so no SQLite write lock either)
    [row] = outbox(app)
    assert row["status"] == "running" and row["leased_until"] > utcnow()
    with app.app_context():
        assert jobs.relay_due() == 0
    assert quick.post("/stock/receipts", {"sku": "MUG", "quantity": 1}).status_code == 201
    second = quick.post("/orders", order_body([("MUG", 1)]))
    assert second.status_code == 201
    assert quick.get(f"/orders/{resp.get_json()['id']}").get_json()["status"] == "placed"
    assert not gate.left.is_set()

    gate.opened.set()
    assert jobs.drain(app, WAIT)
    first_row, second_row = outbox(app)
    assert gate.calls == [first_row["id"], second_row["id"]]  # each once, in the order of the events
    for row in (first_row, second_row):
        assert (row["status"], row["attempts"], row["done_plugins"]) == ("done", 1, [])  # one claim, no failure
    with app.app_context():
        assert jobs.relay_due(now=utcnow() + jobs.LEASE * 2) == 0  # nothing left for the sweeper
    assert len(gate.calls) == 2


def test_the_thread_starts_on_the_first_hand_over_and_again_after_it_went_idle(build, monkeypatch):
    from engine import delivery

    recorder = Recorder()
    app, api, _ = build([("recorder", recorder)])
    shop(api)
    assert "hookshop_delivery" not in app.extensions  # no event yet: no thread either
    monkeypatch.setattr(delivery, "IDLE_SECONDS", 0)  # each thread ends as soon as it has nothing to do
    for _ in range(3):
        assert api.post("/orders", order_body([("MUG", 1)])).status_code == 201
    assert len(recorder.calls) == 3 and [r["status"] for r in outbox(app)] == ["done"] * 3


class Flaky:
    """order_placed raises ``failures`` times, then works."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[int] = []

    @hookimpl
    def order_placed(self, order, event):
        self.calls.append(event["id"])
        if len(self.calls) <= self.failures:
            raise ConnectionError(f"ERP is down (call {len(self.calls)})")


@pytest.mark.parametrize("failures, end", [(2, "done"), (10**6, "dead")], ids=["recovers", "never"])
def test_a_failing_plugin_does_not_touch_the_answer_and_is_retried_until_done_or_dead(build, failures, end):
    flaky, recorder = Flaky(failures), Recorder()
    app, api, _ = build([("flaky", flaky), ("recorder", recorder)])  # OUTBOX_RETRY_DELAYS [0, 0, 0]
    shop(api)
    resp = api.post("/orders", order_body([("MUG", 1)]))
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    assert (order["status"], order["totals"]["total"]) == ("placed", 1290)

    [row] = outbox(app)
    assert flaky.calls == [row["id"]] and recorder.calls == [(row["id"], order["id"])]
    assert (row["status"], row["attempts"], row["done_plugins"]) == ("pending", 1, ["recorder"])
    assert "ERP is down (call 1)" in row["last_error"]

    with app.app_context():
        for _ in range(3):  # the retries: one each time the sweeper finds the event due
            jobs.relay_due()
        assert jobs.relay_due() == 0
    [row] = outbox(app)
    assert row["status"] == end
    assert len(flaky.calls) == (3 if end == "done" else 4)  # the thread's attempt, then the retries
    assert recorder.calls == [(row["id"], order["id"])]  # the plugin that succeeded is not called again
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "placed"

    # the delivery thread lives on: the next order's hook is delivered by it as usual
    later = api.post("/orders", order_body([("MUG", 1)])).get_json()
    assert recorder.calls[-1][1] == later["id"]


def test_the_delivery_thread_survives_an_error_outside_the_plugins(build, monkeypatch, caplog):
    recorder = Recorder()
    app, api, _ = build([("recorder", recorder)])
    shop(api)
    real = jobs.deliver_leased
    broken = threading.Event()

    def deliver_once_broken(events):
        if not broken.is_set():
            broken.set()
            raise RuntimeError("the database went away")
        return real(events)

    monkeypatch.setattr(jobs, "deliver_leased", deliver_once_broken)
    with caplog.at_level(logging.ERROR, logger="hookshop.jobs"):
        first = api.post("/orders", order_body([("MUG", 1)]))
    assert first.status_code == 201 and recorder.calls == []
    assert any("delivery thread could not deliver" in r.getMessage() for r in caplog.records)
    [row] = outbox(app)
    assert row["status"] == "running" and row["leased_until"] > utcnow()  # still leased: not lost

    second = api.post("/orders", order_body([("MUG", 1)])).get_json()
    assert [order_id for _, order_id in recorder.calls] == [second["id"]]  # the thread went on

    with app.app_context():  # after the lease the sweeper takes the first event over
        assert jobs.relay_due(now=utcnow() + jobs.LEASE + jobs.LEASE / 10) == 1
    assert sorted(order_id for _, order_id in recorder.calls) == sorted([first.get_json()["id"], second["id"]])
    assert [r["status"] for r in outbox(app)] == ["done", "done"]


def test_a_process_that_dies_before_delivering_leaves_its_events_to_the_sweeper(build, monkeypatch):
    recorder = Recorder()
    app, api, _ = build([("recorder", recorder)])
    shop(api)
    handed_to_nobody = []
    monkeypatch.setattr(jobs, "dispatch_events", handed_to_nobody.extend)  # the process "dies" after the commit

    order = api.post("/orders", order_body([("MUG", 1)])).get_json()
    [row] = outbox(app)
    assert [e[0] for e in handed_to_nobody] == [row["id"]] and recorder.calls == []
    assert row["status"] == "running" and utcnow() < row["leased_until"] <= utcnow() + jobs.LEASE  # leased

    with app.app_context():
        assert jobs.relay_due() == 0  # the lease holds: the sweeper waits for the writer
        assert jobs.relay_due(now=row["leased_until"] - jobs.LEASE / 10) == 0
        assert jobs.relay_due(now=row["leased_until"] + jobs.LEASE / 10) == 1
        assert jobs.relay_due(now=row["leased_until"] + jobs.LEASE * 10) == 0
    assert recorder.calls == [(row["id"], order["id"])]
    assert outbox(app)[0]["status"] == "done"


def test_the_delivery_thread_writes_like_any_writer_on_sqlite(tmp_path, request):
    """Its outbox writes start with BEGIN IMMEDIATE (no stale read upgraded to a write), and it runs
    no plugin inside a write transaction."""
    recorder = Recorder()
    app = make_app("sqlite", tmp_path, request, EXTRA_PLUGINS=[("recorder", recorder)],
                   PLUGINS_DISABLED=OTHER_LISTENERS)
    api = ApiClient(app.test_client(), new_key(app))
    shop(api)
    seen: list[tuple[str, str]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread().name == "hookshop-delivery":
            seen.append((str(id(conn.connection.dbapi_connection)), " ".join(statement.split())))

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", listener)
    try:
        order = api.post("/orders", order_body([("MUG", 1)])).get_json()
    finally:
        sa_event.remove(engine, "before_cursor_execute", listener)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert recorder.calls and recorder.calls[0][1] == order["id"]
    writes = 0
    last_begin: dict[str, str] = {}
    for conn, statement in seen:
        if statement.startswith("BEGIN"):
            last_begin[conn] = statement
        elif statement.split()[0] in ("UPDATE", "INSERT", "DELETE"):
            writes += 1
            assert last_begin.get(conn) == "BEGIN IMMEDIATE", (statement, seen)
    assert writes >= 1


# ----------------------------------------------------------------- a slow webhook receiver


class SlowReceiver:
    """A loopback HTTP endpoint that holds each request until the test opens it (at most WAIT s)."""

    def __init__(self):
        self.arrived, self.opened, self.answered = threading.Event(), threading.Event(), threading.Event()
        self.bodies: list[bytes] = []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ, start_response):
        body = Request(environ).get_data()
        self.arrived.set()
        self.opened.wait(WAIT)
        self.bodies.append(body)
        self.answered.set()
        return Response("ok")(environ, start_response)

    def stop(self):
        self.opened.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def slow_receiver():
    receiver = SlowReceiver()
    yield receiver
    receiver.stop()


def test_a_slow_webhook_receiver_does_not_delay_placement(build, slow_receiver):
    # channel_webhook sends its outbound webhooks from stage hooks; loopback targets are allowed here
    app, api, quick = build(PLUGINS_DISABLED=["accounting_export", "notify_email"],
                            CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS="127.0.0.0/8", CHANNEL_WEBHOOK_TIMEOUT=WAIT * 2)
    shop(api)
    resp = api.post("/webhooks/subscriptions", {"url": slow_receiver.url, "events": ["order_placed"]})
    assert resp.status_code == 201, resp.get_json()

    placed = quick.post("/orders", order_body([("MUG", 1)]))
    assert placed.status_code == 201, placed.get_json()
    assert not slow_receiver.answered.is_set()  # the 201 did not wait for the receiver
    assert slow_receiver.arrived.wait(WAIT)  # the webhook is on its way, from the delivery thread
    [delivery] = quick.get("/webhooks/deliveries").get_json()["items"]  # recorded and committed, then sent
    assert delivery["status"] != "delivered"

    slow_receiver.opened.set()
    assert jobs.drain(app, WAIT * 3)
    [delivery] = api.get("/webhooks/deliveries").get_json()["items"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
    assert len(slow_receiver.bodies) == 1 and b'"order_placed"' in slow_receiver.bodies[0]
    [row] = outbox(app)
    assert row["status"] == "done" and row["attempts"] == 1


# ----------------------------------------------------------------- production mode: Redis down


class PrivateRedis:
    """A redis-server of this test on a spare loopback port, started and stopped at will."""

    def __init__(self, directory):
        self.port = free_port()
        self.dir = directory
        self.pidfile = directory / "redis.pid"

    def start(self):
        from redis import Redis

        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.pidfile),
                        "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")], check=True, timeout=30)
        client = Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30  # readiness wait, not a timing assertion
        while True:
            try:
                client.ping()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self):
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.pidfile.exists() and time.monotonic() < deadline:  # redis removes it on exit
                time.sleep(0.05)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (Debian: apt-get install redis-server)")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = PrivateRedis(directory)
    yield server
    server.stop()


def test_redis_down_the_order_is_201_and_its_events_wait_for_the_sweeper(build, private_redis, monkeypatch, caplog):
    recorder = Recorder()
    url = f"redis://127.0.0.1:{private_redis.port}/0"  # nothing listens there yet
    app, api, _ = build([("recorder", recorder)], REDIS_URL=url, REDIS_ENQUEUE_TIMEOUT=1.5)
    shop(api)
    with app.app_context():  # the client used for enqueueing cannot hang a request for long
        options = jobs.queue().connection.connection_pool.connection_kwargs
    assert options["socket_connect_timeout"] == options["socket_timeout"] == 1.5

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hookshop.jobs"):
        down = [api.post("/orders", order_body([("MUG", 1)])) for _ in range(2)]
    assert [r.status_code for r in down] == [201, 201], [r.get_json() for r in down]
    warnings = [r.getMessage() for r in caplog.records if r.name == "hookshop.jobs" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # logged once, saying what happens and what to do
    assert "hookshop worker" in warnings[0] and "hookshop relay" in warnings[0] and "REDIS_URL" in warnings[0]
    rows = outbox(app)
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 0)] * 2
    assert all(r["next_attempt_at"] <= utcnow() for r in rows)  # due for the sweeper now
    assert recorder.calls == []

    private_redis.start()  # Redis is back
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hookshop.jobs"):
        up = api.post("/orders", order_body([("MUG", 1)]))
    assert up.status_code == 201
    assert any("Redis answers again" in r.getMessage() for r in caplog.records)
    from redis import Redis
    from rq import Queue

    connection = Redis(port=private_redis.port)
    [job] = Queue(app.config["QUEUE"], connection=connection).get_jobs()  # enqueued as usual again
    connection.close()

    with app.app_context():
        assert jobs.relay_due() == 3  # the sweeper of `hookshop worker` (or `hookshop relay`)
        assert jobs.relay_due() == 0
    monkeypatch.setattr(jobs, "_worker_app", app)
    jobs.run_events(*job.args)  # what the worker does with the job: the event was delivered already
    order_ids = [r.get_json()["id"] for r in (*down, up)]
    assert sorted(order_id for _, order_id in recorder.calls) == order_ids  # each exactly once
    assert [r["status"] for r in outbox(app)] == ["done"] * 3


# ------------------------------------------------------------------ a batch reads its rows once


class CustomerReader:
    """Reads what most stage hooks read: the order and its customer."""

    def __init__(self):
        self.seen: list[tuple[int, str]] = []

    @hookimpl
    def order_placed(self, order, event):
        self.seen.append((order.id, order.customer.email))


def test_a_relay_batch_loads_its_orders_and_customers_in_one_query_whatever_its_size(build):
    """The relay preloads the rows a batch's events name (one query: orders with their customers) and keeps
    them while the plugins run; the identity map alone would let them go, and every event would read its
    order and its customer again, one by one (two statements per event)."""
    reader = CustomerReader()
    app, api, _quick = build([("reader", reader)])
    product(api, "MUG")
    receive(api, "MUG", 100)
    orders = [place(api, [("MUG", 1)], email=f"c{i}@example.com")["id"] for i in range(10)]
    jobs.drain(app)
    reader.seen.clear()

    def statements_to_relay(order_ids: list[int]) -> int:
        with app.app_context():
            due = utcnow()
            db.session.execute(stage_events.TASKS.insert(), [
                {"kind": "stage_hook", "key": f"again-{oid}-{len(order_ids)}", "status": "pending", "attempts": 0,
                 "payload": {"hook": "order_placed", "payload": {"order_id": oid}, "done": []},
                 "created_at": due, "next_attempt_at": due, "updated_at": due} for oid in order_ids])
            db.session.commit()
            db.session.expunge_all()
            seen = []
            listener = lambda *_a, **_k: seen.append(1)  # noqa: E731
            sa_event.listen(db.engine, "before_cursor_execute", listener)
            try:
                assert jobs.relay_due() == len(order_ids)
            finally:
                sa_event.remove(db.engine, "before_cursor_execute", listener)
            db.session.remove()
        return len(seen)

    small, large = statements_to_relay(orders[:2]), statements_to_relay(orders[2:])
    assert sorted(reader.seen) == sorted((oid, f"c{i}@example.com") for i, oid in enumerate(orders))
    assert small == large, f"2 events took {small} statements, 8 took {large}: the rows were read per event"
