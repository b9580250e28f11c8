"""pytest fixtures of the conformance kit (registered through the ``pytest11`` entry point).

Override ``hookshop_plugins`` (extra ``(name, plugin)`` pairs), ``hookshop_only`` (the discovered plugins to
keep: ``None`` keeps all, ``[]`` none but the core's), ``hookshop_settings`` (extra settings) and
``hookshop_database`` (``"sqlite"`` or ``"postgresql"``; by default every test runs on both) in your tests.
"""

from __future__ import annotations

import os
import uuid

import pytest

from engine.testing.recorder import HookRecorder
from engine.testing.shop import Clock, OrderFactory, run_jobs

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def hookshop_plugins():
    """Override in your tests: the ``(name, plugin)`` pairs to register besides the discovered ones."""
    return []


@pytest.fixture
def hookshop_only():
    """Override in your tests: the names of the discovered plugins to load (``None``: every one)."""
    return None


@pytest.fixture
def hookshop_settings():
    """Override in your tests: extra settings for the app (``{"CARRIER_GENERIC_ZONES": ...}``)."""
    return {}


@pytest.fixture(params=["sqlite", "postgresql"])
def hookshop_database(request):
    """The database the app runs on: each test runs on SQLite and on PostgreSQL
    (``HOOKSHOP_TEST_POSTGRES_URL``, default the local server's ``test`` database, a private schema per
    test). Without a reachable PostgreSQL the PostgreSQL run is skipped, or fails when
    ``HOOKSHOP_REQUIRE_SERVICES=1``. Override it with a plain fixture returning ``"sqlite"`` to run on one."""
    return request.param


def _postgres_schema(url: str):
    """Create a private schema; returns (url with its search_path, drop function)."""
    from sqlalchemy import create_engine, text

    name = f"hs_kit_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:
        engine.dispose()
        reason = f"PostgreSQL is not reachable at {url} ({type(exc).__name__}); set HOOKSHOP_TEST_POSTGRES_URL"
        if os.environ.get("HOOKSHOP_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (HOOKSHOP_REQUIRE_SERVICES=1)")
        pytest.skip(reason)

    def drop():
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()

    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{name}", drop


@pytest.fixture
def hook_recorder():
    """A plugin that records every stage hook it is handed (registered in ``hookshop_app``)."""
    return HookRecorder()


@pytest.fixture
def hookshop_app(tmp_path, hookshop_database, hookshop_plugins, hookshop_only, hookshop_settings, hook_recorder):
    """An app with the discovered plugins (or only ``hookshop_only``), ``hookshop_plugins`` and the
    ``hook_recorder``, on a fresh database whose schema the migrations built."""
    from engine.app import create_app, init_schema
    from engine.db import db
    from engine.jobs import drain
    from engine.testing import DeliveringClient

    drop = None
    if hookshop_database == "postgresql":
        url, drop = _postgres_schema(os.environ.get("HOOKSHOP_TEST_POSTGRES_URL") or POSTGRES_URL)
    else:
        url = f"sqlite:///{tmp_path}/hookshop.sqlite"
    extra = [("hook_recorder", hook_recorder), *hookshop_plugins]
    config = {"DATABASE_URL": url, "INSTANCE": str(tmp_path), "REDIS_URL": None, "TESTING": True,
              "EXTRA_PLUGINS": extra, **hookshop_settings}
    if hookshop_only is not None:
        config["PLUGINS_ALLOWED"] = [*hookshop_only, *(name for name, _ in extra)]
    app = create_app(config)
    init_schema(app)
    app.test_client_class = DeliveringClient  # each request waits for the stage hooks it fired
    yield app
    drain(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if drop is not None:
        drop()


class _Client:
    def __init__(self, client, key):
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def _with(self, headers):
        return {**self.headers, **(headers or {})}

    def get(self, path, headers=None, **kw):
        return self.client.get("/api/v1" + path, headers=self._with(headers), **kw)

    def post(self, path, json=None, headers=None, **kw):
        return self.client.post("/api/v1" + path, json={} if json is None else json, headers=self._with(headers),
                                **kw)

    def patch(self, path, json=None, headers=None, **kw):
        return self.client.patch("/api/v1" + path, json=json or {}, headers=self._with(headers), **kw)


@pytest.fixture
def hookshop_api(hookshop_app):
    """A test client with an API key of every scope: ``.get(path)``, ``.post(path, json)``, ``.patch``
    (paths under ``/api/v1``)."""
    from engine.services import auth

    with hookshop_app.app_context():
        _, key = auth.create_api_key("conformance", ["read", "write", "admin"])
    return _Client(hookshop_app.test_client(), key)


@pytest.fixture
def hookshop_orders(hookshop_api):
    """The order factory: ``place(lines=[("MUG", 1)], **body)`` creates the products and stock it needs
    and places the order; ``advance(order, until="shipped")`` takes it through the stages."""
    return OrderFactory(hookshop_api)


@pytest.fixture
def hookshop_run_jobs(hookshop_app):
    """``run_jobs(now=None)``: deliver what is due, as ``hookshop worker``'s sweeper does, at ``now``."""
    return lambda now=None: run_jobs(hookshop_app, now)


@pytest.fixture
def hookshop_clock():
    """A frozen clock (time-machine): ``clock.now``, ``clock.advance(seconds or timedelta)``."""
    clock = Clock()
    yield clock
    clock.stop()
