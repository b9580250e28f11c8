"""The per-process API-key cache (engine.services.auth.find_api_key): a looked-up key is trusted for
API_KEY_CACHE_SECONDS (1 s by default) without a SELECT; a revocation by another process is refused
within that time, one by this process at once. The clock is replaced: nothing here sleeps."""

from __future__ import annotations

import pytest
from conftest import new_key
from sqlalchemy import update

from engine.db import db, utcnow
from engine.models import ApiKey
from engine.services import auth


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def app_config():
    return {"API_KEY_CACHE_SECONDS": 1.0}


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(auth, "clock", clock)
    return clock


def _revoke_elsewhere(app, key: str) -> None:
    """What another server process does: set revoked_at in the database (this process's cache untouched)."""
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.key_hash == auth.hash_key(key)).values(revoked_at=utcnow()))
        db.session.commit()


def _get(app, key: str) -> int:
    return app.test_client().get("/api/v1/orders", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_key_revoked_by_another_process_is_refused_within_a_second(app, clock):
    key = new_key(app)
    assert _get(app, key) == 200
    _revoke_elsewhere(app, key)
    clock.now += 0.5
    assert _get(app, key) == 200  # still trusted from the cache: at most API_KEY_CACHE_SECONDS
    clock.now += 0.51
    assert _get(app, key) == 401
    clock.now += 10
    assert _get(app, key) == 401  # a revoked key is never cached


def test_a_key_revoked_in_this_process_is_refused_at_once(app, clock):
    key = new_key(app)
    assert _get(app, key) == 200
    with app.app_context():
        auth.revoke_api_key(auth.find_api_key(key).id)
    assert _get(app, key) == 401


def test_a_cached_key_sends_no_select(app, clock):
    from sqlalchemy import event

    key = new_key(app)
    assert _get(app, key) == 200
    seen = []
    with app.app_context():
        engine = db.engine

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        clock.now += 0.9
        with app.app_context():
            assert auth.find_api_key(key) is not None
        assert not any("api_keys" in s for s in seen)
        clock.now += 0.2  # past the second: asked again
        with app.app_context():
            assert auth.find_api_key(key) is not None
        assert any("api_keys" in s for s in seen)
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_unknown_keys_are_not_cached(app, clock):
    """A key made a moment ago (``hookshop create-api-key`` in another process) works at once."""
    with app.app_context():
        assert auth.find_api_key("hs_made-later") is None
        auth.create_api_key("later", ["read"], key="hs_made-later")
        assert auth.find_api_key("hs_made-later") is not None
