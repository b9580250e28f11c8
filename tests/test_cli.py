"""The real ``hookshop`` console script, run as a subprocess (each call costs about a second)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import PG_URL, ApiClient, _psycopg_url, service_missing
from sqlalchemy import create_engine, func, select, text

from engine import outbox
from engine.app import create_app
from engine.db import db
from engine.demo import DEMO_API_KEY
from engine.models import ApiKey, Order, Product, RetryTask, StaffUser, StockMovement

BIN = Path(sys.executable).parent
HOOKSHOP = BIN / "hookshop"
BUNDLED = ("payments_manual", "payments_stripe", "carrier_generic", "accounting_export", "channel_webhook")
STAGES = {"placed", "paid", "picking", "picked", "confirmed", "packed", "shipped", "completed", "on_hold",
          "cancelled"}


def clean_env(**extra) -> dict:
    """The caller's environment without any hookshop setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOOKSHOP_", "FLASK_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(extra)
    return env


def hookshop(env, *args, input=None, expect=0, program=HOOKSHOP) -> subprocess.CompletedProcess:
    done = subprocess.run([str(program), *args], env=env, input=input, capture_output=True, text=True, timeout=120)
    if expect is not None:
        assert done.returncode == expect, (args, done.stdout, done.stderr)
    return done


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    return path, clean_env(HOOKSHOP_INSTANCE=str(path))


@pytest.fixture
def pg_url():
    """A private, empty PostgreSQL schema, as a plain postgresql:// URL."""
    schema = f"hs_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    yield PG_URL + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def in_process(instance_path: Path, database_url: str | None = None):
    """The app the CLI used: same instance folder (its SQLite file) or the same DATABASE_URL."""
    return create_app({"INSTANCE": str(instance_path), "DATABASE_URL": database_url, "REDIS_URL": None})


def dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_plugins_works_before_init_and_through_flask(instance):
    path, env = instance
    out = hookshop(env, "plugins").stdout
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert set(BUNDLED) <= set(names)
    blocks = dict(zip(names, [line.strip() for line in out.splitlines() if line.startswith("    hooks:")], strict=True))
    assert "register_carriers" in blocks["carrier_generic"]
    assert "register_payment_providers" in blocks["payments_manual"]
    assert all(b.startswith("hooks:") for b in blocks.values())
    assert "disabled" in out.split("payments_stripe", 1)[1].splitlines()[0]  # no Stripe key here
    # nothing was created: there is no schema before init
    db_file = path / "hookshop.sqlite"
    if db_file.exists():
        engine = create_engine(f"sqlite:///{db_file}")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type='table'")).scalar() == 0
        engine.dispose()

    via_flask = hookshop(env, "--app", "engine", "plugins", program=BIN / "flask").stdout
    assert via_flask == out


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_init_twice_then_an_api_key_that_works(instance, request, database):
    path, env = instance
    url = None
    if database == "postgresql":
        url = request.getfixturevalue("pg_url")
        env = {**env, "DATABASE_URL": url}
    first = hookshop(env, "init")
    assert "schema ready" in first.stdout and "applied 0001_core_baseline" in first.stdout
    assert hookshop(env, "init").stdout == first.stdout.splitlines()[-1] + "\n"  # idempotent: nothing to apply
    if database == "postgresql":
        assert "postgresql" in first.stdout and not (path / "hookshop.sqlite").exists()

    out = hookshop(env, "create-api-key", "--name", "n", "--scopes", "read,write").stdout
    key = out.strip().splitlines()[-1]
    assert " " not in key and len(key) >= 20
    assert "shown" in out.splitlines()[0]  # a human line first, the key last

    if database == "sqlite":  # the other commands once, on the SQLite instance
        bad = hookshop(env, "create-api-key", "--name", "n", "--scopes", "read,fly", expect=None)
        assert bad.returncode != 0
        assert "read, write, admin" in bad.stderr and "--scopes read,write" in bad.stderr
        assert "Traceback" not in bad.stderr and bad.stdout == ""

        done = hookshop(env, "create-user", "--email", "wh@example.com", "--role", "warehouse", "--password-stdin",
                        input="correct horse battery\n")
        assert "wh@example.com" in done.stdout
        again = hookshop(env, "create-user", "--email", "wh@example.com", "--role", "admin", "--password-stdin",
                         input="another password\n", expect=None)
        assert again.returncode != 0 and "exists" in again.stderr and "Traceback" not in again.stderr

    app = in_process(path, url)
    try:
        api = ApiClient(app.test_client(), key)
        r = api.get("/orders")
        assert r.status_code == 200 and r.get_json() == {"items": [], "next_cursor": None}
        assert api.get("/orders", headers={"Authorization": "Bearer " + key[:-1] + "x"}).status_code == 401
        assert api.get("/plugins").status_code == 200
        with app.app_context():  # one key: the refused one was not created
            assert db.session.execute(select(func.count()).select_from(ApiKey)).scalar_one() == 1
            users = db.session.execute(select(StaffUser)).scalars().all()
            if database == "sqlite":
                assert [(u.email, u.role) for u in users] == [("wh@example.com", "warehouse")]
                assert users[0].password_hash != "correct horse battery"
                assert users[0].password_hash.startswith("$argon2id$")  # Argon2id
                assert PasswordHasher().verify(users[0].password_hash, "correct horse battery")
    finally:
        dispose(app)


def _counts(app) -> dict:
    with app.app_context():
        counts = {model.__name__: db.session.execute(select(func.count()).select_from(model)).scalar_one()
                  for model in (Product, Order, StockMovement, RetryTask, StaffUser)}
        db.session.remove()
    return counts


def test_demo_loads_every_stage_once(instance):
    path, env = instance
    first = hookshop(env, "demo")
    assert DEMO_API_KEY in first.stdout
    app = in_process(path)
    try:
        api = ApiClient(app.test_client(), DEMO_API_KEY)
        items = api.get("/orders?limit=500").get_json()["items"]
        assert STAGES <= {o["status"] for o in items}
        picking = next(o for o in items if o["status"] == "picking")
        assert 0 < sum(ln["picked_quantity"] for ln in picking["lines"]) < sum(ln["quantity"] for ln in picking["lines"])
        shipped = next(o for o in items if o["status"] == "shipped")
        assert shipped["shipments"] and shipped["shipments"][0]["tracking_number"]
        assert api.get("/stock/HEADPHONES-X1").status_code == 200
        before = _counts(app)
        assert before["Product"] >= 3 and before["Order"] == len(items)
        with app.app_context():  # the command ended once its delivery thread had run every stage hook
            statuses = {e.status for e in outbox.events()}
            db.session.remove()
        assert statuses == {"done"}

        second = hookshop(env, "demo")
        assert "already" in second.stdout
        assert _counts(app) == before
        assert api.get("/orders?limit=500").get_json()["items"] == items
    finally:
        dispose(app)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_serve_demo_answers_over_http(instance, tmp_path):
    path, env = instance
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    out, err = open(tmp_path / "serve.out", "w+"), open(tmp_path / "serve.err", "w+")
    proc = subprocess.Popen([str(HOOKSHOP), "serve", "--port", str(port), "--demo"], env=env, stdout=out,
                            stderr=err, text=True)
    try:
        deadline = time.monotonic() + 60  # readiness wait, not a timing assertion
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, headers, body = _get(base + "/api/openapi.json")
                break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, (tmp_path / "serve.err").read_text()
        assert status == 200
        assert headers.get("Server") == "hookshop"  # waitress, not the development server
        assert b'"openapi"' in body

        status, _, body = _get(base + "/api/v1/orders", {"Authorization": f"Bearer {DEMO_API_KEY}"})
        assert status == 200 and b'"items"' in body and b'"status"' in body
        status, _, _ = _get(base + "/api/v1/orders")
        assert status == 401
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
    printed = (tmp_path / "serve.out").read_text()
    assert f"http://127.0.0.1:{port}" in printed and DEMO_API_KEY in printed
