"""pytest fixtures of the conformance kit (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest


@pytest.fixture
def hookshop_plugins():
    """Override in your tests: the ``(name, plugin)`` pairs to register."""
    return []


@pytest.fixture
def hookshop_app(tmp_path, hookshop_plugins):
    from engine.app import create_app, init_schema
    from engine.db import db
    from engine.jobs import drain
    from engine.testing import DeliveringClient

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/hookshop.sqlite", "INSTANCE": str(tmp_path),
                      "REDIS_URL": None, "TESTING": True, "EXTRA_PLUGINS": list(hookshop_plugins)})
    init_schema(app)
    app.test_client_class = DeliveringClient  # each request waits for the stage hooks it fired
    yield app
    drain(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class _Client:
    def __init__(self, client, key):
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def get(self, path, **kw):
        return self.client.get("/api/v1" + path, headers=self.headers, **kw)

    def post(self, path, json=None, **kw):
        return self.client.post("/api/v1" + path, json={} if json is None else json, headers=self.headers, **kw)


@pytest.fixture
def hookshop_api(hookshop_app):
    from engine.services import auth

    with hookshop_app.app_context():
        _, key = auth.create_api_key("conformance", ["read", "write", "admin"])
    return _Client(hookshop_app.test_client(), key)
