"""Several relays at once never hand an event to a plugin twice (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).

Due events are written straight into the outbox; then relays claim and deliver them concurrently:
threads of this process (``relay_due`` and ``deliver_events`` by id, as the sweeper and the rq jobs do)
and separate processes. Two recording plugins append one line per call to a file (``O_APPEND``): when
nothing fails each event reaches each plugin exactly once, and every row ends ``done`` with both plugins
in ``done_plugins``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import make_app

from engine import hookimpl, jobs, outbox
from engine.db import db, utcnow
from engine.retry_queue import TASKS

TESTS = Path(__file__).resolve().parent
OTHER_LISTENERS = ["channel_webhook", "accounting_export", "notify_email"]
EVENTS = 600


class LineRecorder:
    """Writes ``{"plugin", "event_id", "pid"}`` per call to ``RECORD_FILE``; a little slow, so batches overlap."""

    def __init__(self, name):
        self.name = name
        self.path = None

    @hookimpl
    def plugin_setup(self, app):
        self.path = app.config.get("RECORD_FILE")
        return None if self.path else "HOOKSHOP_RECORD_FILE is not set"

    @hookimpl
    def stock_low(self, event):
        time.sleep(0.001)
        line = json.dumps({"plugin": self.name, "event_id": event["id"], "pid": os.getpid()}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


first, second = LineRecorder("first"), LineRecorder("second")


@pytest.fixture
def relay_app(database, tmp_path, request):
    record = tmp_path / "calls.jsonl"
    app = make_app(database, tmp_path, request, RECORD_FILE=str(record), PLUGINS_DISABLED=OTHER_LISTENERS,
                   EXTRA_PLUGINS=[("first", first), ("second", second)])
    with app.app_context():
        due = utcnow() - timedelta(seconds=1)
        db.session.execute(TASKS.insert(), [
            {"kind": "stage_hook", "key": f"n{n}", "payload": {"hook": "stock_low", "payload": {"n": n}, "done": []},
             "status": "pending", "attempts": 0, "created_at": due, "next_attempt_at": due, "updated_at": due}
            for n in range(EVENTS)])
        db.session.commit()
        ids = [e.id for e in outbox.events()]
    yield app, record, ids
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _check(app, record, ids):
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    pairs = sorted((c["plugin"], c["event_id"]) for c in calls)
    assert pairs == sorted([("first", i) for i in ids] + [("second", i) for i in ids])  # once each, no more
    with app.app_context():
        rows = {(e.status, e.attempts, tuple(e.done_plugins)) for e in outbox.events()}
        db.session.remove()
    assert rows == {("done", 1, ())}  # each claimed once, by one relay, and done with no failure
    return calls


def test_relay_threads_deliver_each_event_to_each_plugin_exactly_once(relay_app):
    app, record, ids = relay_app
    errors = []
    start = threading.Barrier(6)

    def sweeper():
        with app.app_context():
            try:
                start.wait()
                while jobs.relay_due(limit=15):
                    pass
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    def rq_jobs(seed):
        chosen = random.Random(seed).sample(ids, len(ids) // 2)  # jobs for events a sweeper may hold
        with app.app_context():
            try:
                start.wait()
                for index in range(0, len(chosen), 3):
                    jobs.deliver_events(chosen[index:index + 3])
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sweeper) for _ in range(3)]
    threads += [threading.Thread(target=rq_jobs, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == [] and not any(t.is_alive() for t in threads)
    _check(app, record, ids)


RELAY_PROCESS = """
import sys
from engine import jobs
from engine.app import create_app
app = create_app()
with app.app_context():
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    while jobs.relay_due(limit=int(sys.argv[1])):
        pass
"""


def test_relay_processes_deliver_each_event_to_each_plugin_exactly_once(relay_app, tmp_path):
    app, record, ids = relay_app
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("the threads test covers SQLite's single writer; processes are the PostgreSQL case")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSHOP_") and k != "REDIS_URL"}
    env.update(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], HOOKSHOP_INSTANCE=str(tmp_path / "relay"),
               HOOKSHOP_RECORD_FILE=str(record), HOOKSHOP_PLUGINS_DISABLED=",".join(OTHER_LISTENERS),
               HOOKSHOP_EXTRA_PLUGINS="first=test_relay_concurrency:first,second=test_relay_concurrency:second",
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    relays = [subprocess.Popen([sys.executable, "-c", RELAY_PROCESS, str(limit)], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for limit in (10, 25, 40, 100)]
    for relay in relays:  # every app is built before the first claim
        assert relay.stdout.readline().strip() == "ready", relay.stderr.read()
    for relay in relays:
        relay.stdin.write("go\n")
        relay.stdin.flush()
    for relay in relays:
        _, stderr = relay.communicate(timeout=300)
        assert relay.returncode == 0, stderr
    calls = _check(app, record, ids)
    assert len({c["pid"] for c in calls}) > 1  # really concurrent: more than one process delivered


def test_deliver_event_claims_one_event_and_skips_it_once_done(relay_app):
    app, record, ids = relay_app
    with app.app_context():
        assert jobs.deliver_event(ids[0]) == "done"
        assert jobs.deliver_event(ids[0]) == "skipped"  # done: nothing to claim
        db.session.remove()
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert sorted((c["plugin"], c["event_id"]) for c in calls) == [("first", ids[0]), ("second", ids[0])]
