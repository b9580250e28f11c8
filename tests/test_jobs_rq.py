"""Production mode: stage hooks go through a real Redis to a real ``hookshop worker``.

The worker is a subprocess; it loads this module's ``recorder`` plugin through
``HOOKSHOP_EXTRA_PLUGINS`` (with ``tests/`` on ``PYTHONPATH``), and the recorder
writes one JSON line per call to the file named by ``HOOKSHOP_RECORD_FILE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import place, product, receive, service_missing

from engine import hookimpl, outbox
from engine.db import db

REDIS_URL = os.environ.get("HOOKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
HOOKSHOP = Path(sys.executable).with_name("hookshop")
TESTS = Path(__file__).resolve().parent


class FileRecorder:
    """Appends ``{"hook", "event_id", "order_id", "status", "pid"}`` to ``RECORD_FILE``."""

    path: str | None = None

    @hookimpl
    def plugin_setup(self, app):
        self.path = app.config.get("RECORD_FILE")
        return None if self.path else "HOOKSHOP_RECORD_FILE is not set"

    def _write(self, hook, order, event):
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"hook": hook, "event_id": event["id"], "order_id": order.id,
                                 "status": order.status, "pid": os.getpid()}) + "\n")

    @hookimpl
    def order_placed(self, order, event):
        self._write("order_placed", order, event)

    @hookimpl
    def order_paid(self, order, event):
        self._write("order_paid", order, event)


recorder = FileRecorder()


@pytest.fixture(scope="module")
def redis_conn():
    from redis import Redis

    conn = Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    # no FLUSHDB: test runs of other checkouts may share this database; each test has a queue of its own
    yield conn
    conn.close()


@pytest.fixture
def queue_name(redis_conn):
    """A queue of this test alone, deleted with its jobs afterwards."""
    from rq import Queue

    name = f"hookshop-test-{uuid.uuid4().hex[:8]}"
    yield name
    queue = Queue(name, connection=redis_conn)
    for registry in (queue.finished_job_registry, queue.failed_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    redis_conn.delete(f"{name}:relay-job-waiting")


@pytest.fixture
def record_file(tmp_path):
    return tmp_path / "hooks.jsonl"


# the bundled plugins that listen to stage hooks stay out of the bookkeeping checked here, in the test
# process and in the worker alike
OTHER_LISTENERS = ["channel_webhook", "accounting_export", "notify_email"]


@pytest.fixture
def app_config(redis_conn, queue_name, record_file):
    return {"REDIS_URL": REDIS_URL, "QUEUE": queue_name, "RECORD_FILE": str(record_file),
            "EXTRA_PLUGINS": [("recorder", recorder)], "PLUGINS_DISABLED": OTHER_LISTENERS}


def _outbox(app) -> list[tuple[str, str, int, list]]:
    with app.app_context():
        rows = [(e.hook, e.status, e.attempts, e.done_plugins) for e in outbox.events()]
        db.session.remove()
    return rows


def _outbox_ids(app) -> list[int]:
    with app.app_context():
        ids = [e.id for e in outbox.events()]
        db.session.remove()
    return ids


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HOOKSHOP_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(extra)
    return env


def test_worker_delivers_stage_hooks_enqueued_on_redis(app, api, redis_conn, queue_name, record_file, tmp_path):
    from rq import Queue

    product(api, "MUG")
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 1)])
    assert api.post(f"/orders/{order['id']}/pay").get_json()["status"] == "paid"

    # enqueued, not run: the recorder was not called and the outbox rows wait
    assert not record_file.exists()
    assert _outbox(app) == [("order_placed", "pending", 0, []), ("order_paid", "pending", 0, [])]
    q = Queue(queue_name, connection=redis_conn)
    jobs = q.get_jobs()
    # one relay job waits at a time: the payment's commit found it waiting and enqueued none
    assert len(jobs) == 1 and jobs[0].func_name == "engine.jobs.run_events"

    env = _env(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=REDIS_URL,
               HOOKSHOP_QUEUE=queue_name, HOOKSHOP_INSTANCE=str(tmp_path / "worker"),
               HOOKSHOP_EXTRA_PLUGINS="recorder=test_jobs_rq:recorder", HOOKSHOP_RECORD_FILE=str(record_file),
               HOOKSHOP_PLUGINS_DISABLED=",".join(OTHER_LISTENERS),
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([str(HOOKSHOP), "worker", "--burst"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr

    calls = [json.loads(line) for line in record_file.read_text().splitlines()]
    assert [(c["hook"], c["order_id"]) for c in calls] == [("order_placed", order["id"]), ("order_paid", order["id"])]
    assert all(c["pid"] != os.getpid() for c in calls)  # run in the worker, not here
    assert [c["status"] for c in calls] == ["paid", "paid"]  # the order as committed when the job ran
    assert _outbox(app) == [("order_placed", "done", 1, []), ("order_paid", "done", 1, [])]  # one claim each
    assert q.count == 0
    assert len(q.finished_job_registry) == 1 and len(q.failed_job_registry) == 0

    # the job cleared the flag when it started: the next commit enqueues a job again
    again = place(api, [("MUG", 1)])
    assert [job.args[0] for job in q.get_jobs()] == [[_outbox_ids(app)[-1]]] and again["id"]


def test_worker_without_redis_url_says_what_to_do(tmp_path):
    done = subprocess.run([str(HOOKSHOP), "worker", "--burst"], env=_env(HOOKSHOP_INSTANCE=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "REDIS_URL" in done.stderr and "redis://" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------ failed jobs, shutdown, no fork per job


def _worker_env(app, queue_name, tmp_path) -> dict:
    return _env(DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=REDIS_URL, HOOKSHOP_QUEUE=queue_name,
                HOOKSHOP_INSTANCE=str(tmp_path / "worker"), HOOKSHOP_PLUGINS_DISABLED=",".join(OTHER_LISTENERS))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_failed_jobs_are_listed_and_requeued(app, redis_conn, queue_name, tmp_path):
    from rq import Queue

    q = Queue(queue_name, connection=redis_conn)
    job = q.enqueue("json.loads", "{broken")  # raises inside the worker
    env = _worker_env(app, queue_name, tmp_path)
    done = subprocess.run([str(HOOKSHOP), "worker", "--burst"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert q.failed_job_registry.get_job_ids() == [job.id]

    listed = subprocess.run([str(HOOKSHOP), "jobs", "failed"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert job.id in listed.stdout and "json.loads" in listed.stdout and "JSONDecodeError" in listed.stdout
    assert "1 failed" in listed.stdout

    wrong = subprocess.run([str(HOOKSHOP), "jobs", "requeue", "no-such-job"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode != 0 and "not among the failed jobs: no-such-job" in wrong.stderr
    again = subprocess.run([str(HOOKSHOP), "jobs", "requeue", "--all"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "requeued 1 job(s)" in again.stdout
    assert q.failed_job_registry.get_job_ids() == [] and q.get_job_ids() == [job.id]
    empty = subprocess.run([str(HOOKSHOP), "jobs", "failed"], env=env, capture_output=True, text=True, timeout=60)
    assert "no failed jobs" in empty.stdout


def test_sigterm_lets_the_running_job_finish_and_leaves_no_process_behind(app, redis_conn, queue_name, tmp_path):
    import signal
    import time

    from rq import Queue

    q = Queue(queue_name, connection=redis_conn)
    marker = tmp_path / "slow-job-done"
    worker = subprocess.Popen([str(HOOKSHOP), "worker", "--no-sweeper"], env=_worker_env(app, queue_name, tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        job = q.enqueue("subprocess.run", ["sh", "-c", f"sleep 2; touch {marker}"], job_timeout=60)
        deadline = time.monotonic() + 60
        while job.get_status(refresh=True) != "started":
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start the job"
            time.sleep(0.05)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] for pid in _children(worker.pid)]
        assert commands == [[b"sh", b"-c"]]  # the job's own child; no work horse, no scheduler process
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert marker.exists() and job.get_status(refresh=True) == "finished"  # a warm shutdown
    assert _children(worker.pid) == []


def test_a_relay_job_gathers_the_events_committed_while_it_waits(app, api, redis_conn, queue_name, record_file,
                                                                 monkeypatch):
    """``RELAY_GATHER_SECONDS``: the job waits before its first claim with its flag still set, so orders
    committed meanwhile enqueue no job of their own and are delivered in its batch (an in-process rq
    SimpleWorker; the wait is replaced by placing two orders, as a busy shop would in those 50 ms)."""
    from rq import Queue, SimpleWorker

    from engine import jobs

    product(api, "MUG")
    receive(api, "MUG", 5)
    first = place(api, [("MUG", 1)])
    q = Queue(queue_name, connection=redis_conn)
    assert len(q.get_jobs()) == 1
    app.config["RELAY_GATHER_SECONDS"] = 0.05
    during: list[int] = []
    waited: list[float] = []

    def orders_arrive(seconds):
        waited.append(seconds)
        during.extend(place(api, [("MUG", 1)])["id"] for _ in range(2))
        assert len(q.get_jobs()) == 0, "an order committed while the job gathered enqueued a job of its own"

    monkeypatch.setattr(jobs, "_worker_app", app)
    monkeypatch.setattr(jobs, "_gather", orders_arrive)
    SimpleWorker([q], connection=redis_conn).work(burst=True)

    assert waited == [0.05]
    calls = [json.loads(line) for line in record_file.read_text().splitlines()]
    assert [c["order_id"] for c in calls] == [first["id"], *during]  # one batch, in the events' order
    assert len(q.finished_job_registry) == 1 and q.count == 0 and len(q.failed_job_registry) == 0
    assert _outbox(app) == [("order_placed", "done", 1, [])] * 3
    assert not redis_conn.exists(f"{queue_name}:relay-job-waiting")  # cleared: the next commit enqueues a job
