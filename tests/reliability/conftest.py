"""Fixtures of the reliability suite: real processes on a private PostgreSQL schema.

* ``shop``: a private schema of the machine's PostgreSQL, migrated, with an API key; ``shop.env()`` is the
  environment every hookshop process of the test gets (``PYTHONPATH`` = this checkout).
* ``processes``: starts ``hookshop serve`` / ``hookshop worker`` processes and stops whatever is left.
* ``private_redis``: a ``redis-server`` of the test on a free loopback port, to stop and start at will.
* ``receiver``: a loopback HTTP receiver of webhooks (a thread) whose answers the test chooses.

Everything binds port 0 or a port just found free, so the tests run in parallel (pytest-xdist).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import PG_URL, _psycopg_url, order_body, service_missing
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
HOOKSHOP = Path(sys.executable).with_name("hookshop")
SECRET_KEY = "reliability-suite-secret"


def wait_for(predicate, seconds: float = 60.0, what: str = "a condition"):
    """Poll ``predicate`` until it returns something true (its value), or fail after ``seconds``."""
    deadline = time.monotonic() + seconds  # a readiness deadline, not a timing assertion
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None, headers=None, timeout: float = 30.0) -> tuple[int, dict]:
    """One HTTP request; ``(status, JSON body or {})``. Connection errors raise ``OSError``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else {}
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}


# ------------------------------------------------------------------------------------ the shop's database


class Shop:
    """A private PostgreSQL schema and an API key with every scope (``create_key``, once migrated)."""

    def __init__(self, url: str, schema_name: str, folder: Path):
        self.url, self.schema, self.folder, self.key = url, schema_name, folder, None
        self.sql = create_engine(_psycopg_url(url))

    def _app(self):
        from engine.app import create_app

        return create_app({"DATABASE_URL": _psycopg_url(self.url), "INSTANCE": str(self.folder / "tests"),
                           "REDIS_URL": None, "TESTING": True})

    def create_key(self, key: str | None = None) -> str:
        """An API key with every scope (once the schema exists: the first server made it); ``key``: its
        clear value (default: a new one)."""
        from engine.db import db
        from engine.services import auth

        if self.key is None:
            app = self._app()
            with app.app_context():
                _, self.key = auth.create_api_key("reliability", ["read", "write", "admin"], key=key)
                db.session.remove()
                db.engine.dispose()
        return self.key

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HOOKSHOP_", "FLASK_")) and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(DATABASE_URL=self.url, HOOKSHOP_INSTANCE=str(self.folder / "instance"),
                   HOOKSHOP_SECRET_KEY=SECRET_KEY, HOOKSHOP_CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS="127.0.0.0/8",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def headers(self, **extra) -> dict:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def scalar(self, statement: str, **params):
        with self.sql.connect() as conn:
            return conn.execute(text(statement), params).scalar()

    def rows(self, statement: str, **params) -> list:
        with self.sql.connect() as conn:
            return [tuple(row) for row in conn.execute(text(statement), params).all()]

    def execute(self, statement: str, **params) -> int:
        with self.sql.begin() as conn:
            return conn.execute(text(statement), params).rowcount

    def check_invariants(self) -> None:
        """The engine's stock invariants (tests/invariants.py), read in the shop's database."""
        from invariants import check_stock_invariants

        from engine.db import db

        app = self._app()
        try:
            with app.app_context():
                check_stock_invariants()
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@contextmanager
def private_shop(folder: Path):
    """A private schema of the machine's PostgreSQL (the first ``hookshop serve`` migrates it); dropped after."""
    name = f"hs_rel_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    url = PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{name}"
    result = Shop(url, name, folder)
    try:
        yield result
    finally:
        result.sql.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def shop(tmp_path):
    with private_shop(tmp_path) as result:
        yield result


# ------------------------------------------------------------------------------------ processes


class Processes:
    """hookshop processes of one test; each one's stderr goes to a file in the test's folder."""

    def __init__(self, folder: Path):
        self.folder, self.started, self._logs = folder, [], []

    def start(self, name: str, env: dict, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}-{len(self.started)}.err", "w+")
        self._logs.append(log)
        proc = subprocess.Popen([str(HOOKSHOP), *args], env=env, stdout=subprocess.DEVNULL, stderr=log)
        proc.log_path = log.name
        self.started.append(proc)
        return proc

    def serve(self, shop: Shop, env: dict, workers: int = 2) -> str:
        """``hookshop serve --workers N`` on a free port (it migrates the schema); its base URL once it
        answers, and the shop has its API key."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = self.start("serve", env, "serve", "--port", str(port), "--workers", str(workers), "--threads", "8")
        proc.base = base

        def answers():
            assert proc.poll() is None, Path(proc.log_path).read_text()[-3000:]
            try:
                return call("GET", base + "/api/openapi.json", timeout=5)[0] == 200
            except OSError:
                return False

        wait_for(answers, 300, "hookshop serve to answer")
        if workers > 1:
            from engine.serve_processes import pids_of_workers

            wait_for(lambda: len(pids_of_workers(proc.pid)) == workers, 120, "the server's workers")
        shop.create_key()
        return base

    def worker(self, env: dict) -> subprocess.Popen:
        """``hookshop worker`` (its sweeper on); returns the process."""
        return self.start("worker", env, "worker")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()


def kill9(proc_or_pid) -> None:
    """SIGKILL a process (a Popen is also reaped)."""
    pid = proc_or_pid if isinstance(proc_or_pid, int) else proc_or_pid.pid
    os.kill(pid, signal.SIGKILL)
    if not isinstance(proc_or_pid, int):
        proc_or_pid.wait(timeout=30)


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


# ------------------------------------------------------------------------------------ a private Redis


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; ``stop()`` and ``start()`` again keep the port."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.proc = folder, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 30, "redis-server to answer")

    def answers(self) -> bool:
        from redis import Redis

        try:
            return bool(Redis(port=self.port, socket_connect_timeout=1).ping())
        except OSError:
            return False
        except Exception:  # noqa: BLE001 - redis' ConnectionError, BusyLoadingError
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (Debian: apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


# ------------------------------------------------------------------------------------ a webhook receiver


class Receiver:
    """Receives webhooks on a loopback port. ``status`` is what it answers; ``hold`` makes the next request
    wait (``held`` is set) until ``release`` is set; ``after_answer(n)`` runs after the n-th answer.
    ``requests`` lists every ``(webhook-id, type, signature ok)``; ``processed`` is a deduplicating
    consumer's view (each ``webhook-id`` once, in arrival order)."""

    def __init__(self):
        self.status, self.requests, self.processed, self.secret = 200, [], [], None
        self.hold, self.held, self.release = False, threading.Event(), threading.Event()
        self.after_answer = None
        self.lock = threading.Lock()
        self.port, self.server, self.thread = 0, None, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.handle(self, body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Down: the port refuses connections until ``start()``."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def handle(self, handler, body: bytes) -> None:
        from standardwebhooks import Webhook

        msg_id = handler.headers.get("webhook-id")
        try:
            Webhook(self.secret).verify(body, {k.lower(): v for k, v in handler.headers.items()})
            signed = True
        except Exception:  # noqa: BLE001 - any verification failure
            signed = False
        with self.lock:
            hold, self.hold = self.hold, False
            status = self.status
        if hold:
            self.held.set()
            self.release.wait(60)
        with self.lock:
            self.requests.append((msg_id, json.loads(body).get("type"), signed))
            if status < 300 and signed and msg_id not in {m for m, _ in self.processed}:
                self.processed.append((msg_id, json.loads(body)))
            count = len(self.requests)
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        handler.wfile.flush()
        if self.after_answer is not None:
            self.after_answer(count)

    def ids(self) -> list[str]:
        with self.lock:
            return [m for m, _, _ in self.requests]


@pytest.fixture
def receiver():
    rec = Receiver()
    rec.start()
    yield rec
    rec.release.set()
    if rec.server is not None:
        try:
            rec.stop()
        except OSError:
            pass


# ------------------------------------------------------------------------------------ the shop's API


def subscribe(base: str, shop: Shop, receiver: Receiver, events=("*",)) -> dict:
    status, body = call("POST", base + "/api/v1/webhooks/subscriptions", {"url": receiver.url, "events": list(events)},
                        shop.headers())
    assert status == 201, body
    receiver.secret = body["secret"]
    return body


def stock_up(base: str, shop: Shop, sku: str, quantity: int, price: int = 1000) -> None:
    status, body = call("POST", base + "/api/v1/products", {"sku": sku, "name": sku.title(), "price": price,
                                                           "currency": "EUR"}, shop.headers())
    assert status == 201, body
    if quantity:
        status, body = call("POST", base + "/api/v1/stock/receipts", {"sku": sku, "quantity": quantity},
                            shop.headers())
        assert status == 201, body


def place(base: str, shop: Shop, sku: str, quantity: int = 1, key: str | None = None, email="ann@example.com"):
    """``(status, body)`` of ``POST /orders``; ``key`` is sent as ``Idempotency-Key``."""
    headers = shop.headers(**({"Idempotency-Key": key} if key else {}))
    return call("POST", base + "/api/v1/orders", order_body([(sku, quantity)], email=email), headers)


# the stage-hook events (the outbox): the retry queue's tasks of kind stage_hook, as the old table's columns
EVENTS = ("(SELECT id, payload->>'hook' AS hook, payload->'payload' AS payload, status, attempts, next_attempt_at, "
          "leased_until FROM retry_tasks WHERE kind = 'stage_hook')")


def outbox_settled(shop: Shop) -> bool:
    """Every outbox event is done (none pending or running, none dead)."""
    return shop.scalar(f"SELECT count(*) FROM {EVENTS} e WHERE status <> 'done'") == 0
