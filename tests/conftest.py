"""Test fixtures: every test that takes ``app`` runs on SQLite and on PostgreSQL.

PostgreSQL is ``HOOKSHOP_TEST_DATABASE_URL`` (default the machine's
``postgresql://postgres@127.0.0.1:5432/test``); each test session works in its
own schema, so runs never collide. With ``HOOKSHOP_REQUIRE_SERVICES=1`` a
missing service fails the tests instead of skipping them.

The schema is built by the migrations, as ``hookshop init`` builds it, never by
``create_all``: once per session (SQLite: a template file each test copies;
PostgreSQL: the session's schema, emptied with TRUNCATE before each test), and
again for an app that loads a plugin with migrations the session has not run.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import inspect as sa_inspect
from werkzeug.serving import make_server

from engine import jobs, schema
from engine.app import create_app
from engine.db import db
from engine.testing import DeliveringClient

PG_URL = os.environ.get("HOOKSHOP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# the engine's PostgreSQL driver in the tests: psycopg (3, what a plain postgresql:// URL picks) or psycopg2
# (the faster C driver a shop can choose, DATABASE_URL=postgresql+psycopg2://; tests/test_pg_drivers.py)
PG_DRIVER = os.environ.get("HOOKSHOP_TEST_PG_DRIVER", "psycopg")
REQUIRE_SERVICES = os.environ.get("HOOKSHOP_REQUIRE_SERVICES") == "1"
SUPPORT_ADDRESS = {"line1": "Sample Street 12", "city": "Berlin", "postal_code": "10115", "country": "DE"}


def service_missing(reason: str):
    """Skip, or fail when the services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (HOOKSHOP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _psycopg_url(url: str) -> str:
    """A plain PostgreSQL URL with the driver of ``HOOKSHOP_TEST_PG_DRIVER``; a URL naming one is kept."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return f"postgresql+{PG_DRIVER}://" + url[len(prefix):]
    return url


def _migrated_folders(app) -> set:
    """The versions folders of the branches an upgrade of ``app`` runs (the core's, the loaded plugins')."""
    return {owner.versions for owner in schema.owners(app) if owner.loaded and owner.versions.is_dir()}


def _base_config(url: str, folder) -> dict:
    return {"DATABASE_URL": url, "INSTANCE": str(folder), "TESTING": True, "REDIS_URL": None}


def _dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite file migrated once to every head (the core and every bundled plugin); tests copy it."""
    folder = tmp_path_factory.mktemp("schema")
    path = folder / "template.sqlite"
    app = create_app(_base_config(f"sqlite:///{path}", folder))
    schema.upgrade(app)
    folders = _migrated_folders(app)
    _dispose(app)
    with sqlite3.connect(path) as conn:  # no -wal file beside the copies: the template is one file
        conn.execute("PRAGMA journal_mode=DELETE")
    return {"path": path, "folders": folders}


@pytest.fixture(scope="session")
def pg_schema(tmp_path_factory):
    """A private schema for this test session, migrated to every head; dropped at the end."""
    schema_name = f"hs_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        engine = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    url = _psycopg_url(PG_URL)
    url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema_name}"
    app = create_app(_base_config(url, tmp_path_factory.mktemp("pg-instance")))
    schema.upgrade(app)
    state = {"url": url, "folders": _migrated_folders(app), "tables": _tables(app)}
    _dispose(app)
    yield state
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    engine.dispose()


def _tables(app) -> list[str]:
    """The tables of the app's database but Alembic's version table."""
    with app.app_context():
        return [name for name in sa_inspect(db.engine).get_table_names() if name != schema.VERSION_TABLE]


def make_app(database: str, tmp_path, request, **config):
    """An app on a clean database ('sqlite' or 'postgresql'), its schema made by the migrations."""
    if database == "sqlite":
        path = tmp_path / "test.sqlite"
        config.setdefault("DATABASE_URL", f"sqlite:///{path}")
    else:
        state = request.getfixturevalue("pg_schema")
        config.setdefault("DATABASE_URL", state["url"])
    config.setdefault("INSTANCE", str(tmp_path / "instance"))
    config.setdefault("TESTING", True)
    config.setdefault("REDIS_URL", None)
    config.setdefault("OUTBOX_RETRY_DELAYS", [0, 0, 0])
    # every request looks its API key up (statement counts do not depend on the test's speed); the
    # cache is tested on its own (tests/test_api_key_cache.py) and by the placement's statement count
    config.setdefault("API_KEY_CACHE_SECONDS", 0)
    app = create_app(config)
    # every request of a test client waits for the stage hooks it fired (the delivery thread still runs them)
    app.test_client_class = DeliveringClient
    if database == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        if config["DATABASE_URL"] == f"sqlite:///{path}" and not path.exists():
            shutil.copyfile(template["path"], path)
            if not _migrated_folders(app) <= template["folders"]:
                schema.upgrade(app)  # a plugin with its own migrations
        else:
            schema.upgrade(app)
    else:
        if not _migrated_folders(app) <= state["folders"]:
            schema.upgrade(app)
            state["folders"] |= _migrated_folders(app)
            state["tables"] = _tables(app)
        with app.app_context():
            tables = ", ".join(f'"{name}"' for name in state["tables"])
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
    return app


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright (its own browser download does not work here). Defined once, here:
    a second session-scoped Playwright in the same test process fails ("Sync API inside the asyncio loop")."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        service_missing("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _deliveries_finish_within_the_test():
    """No stage hook of one test runs into the next (PostgreSQL tests share a schema and reuse ids)."""
    yield
    jobs.drain()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    return request.param


@pytest.fixture
def app_config():
    """Override in a test module to pass settings to create_app."""
    return {}


@pytest.fixture
def app(database, tmp_path, request, app_config):
    app = make_app(database, tmp_path, request, **app_config)
    yield app
    jobs.drain(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


class ApiClient:
    """The test client with an API key and JSON helpers. With the app's client (a
    ``DeliveringClient``) each request returns once the stage hooks it fired have run."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.key}", **(headers or {})}

    def get(self, path, headers=None, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        if json is None and "data" not in kw:
            json = {}
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(headers), **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self.client.patch("/api/v1" + path, json={} if json is None else json, headers=self._headers(headers),
                                 **kw)


def new_key(app, scopes=("read", "write", "admin"), name="test") -> str:
    from engine.services import auth

    with app.app_context():
        _, key = auth.create_api_key(name, list(scopes))
    return key


@pytest.fixture
def api(app):
    return ApiClient(app.test_client(), new_key(app))


# ----------------------------------------------------------------- shop builders


def product(api, sku="SKU-1", price=1000, **extra):
    resp = api.post("/products", {"sku": sku, "name": sku.title(), "price": price, "currency": "EUR", **extra})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def receive(api, sku, quantity, **extra):
    resp = api.post("/stock/receipts", {"sku": sku, "quantity": quantity, **extra})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def order_body(lines, email="ann@example.com", **extra):
    return {"customer": {"email": email, "name": "Ann Example", "phone": "+49 30 1234567",
                         "shipping_address": dict(SUPPORT_ADDRESS)},
            "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines], **extra}


def place(api, lines, expect=201, **extra):
    resp = api.post("/orders", order_body(lines, **extra))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def stock_of(api, sku):
    resp = api.get(f"/stock/{sku}")
    assert resp.status_code == 200
    return resp.get_json()


@contextmanager
def live_server(app):
    """Serve ``app`` on a loopback port with werkzeug's threaded server for the block; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
