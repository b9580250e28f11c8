"""GET /healthz: the database, Redis and its queue, the outbox lag; 503 naming what is degraded."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from conftest import make_app, service_missing
from redis import Redis

from engine.app import create_app
from engine.db import db, utcnow
from engine.models import RetryTask

REDIS_URL = os.environ.get("HOOKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_healthy_engine_answers_200_without_a_key_and_shows_no_connection_details(app):
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert body["outbox"] == {"ok": True, "pending": 0, "dead": 0, "lag_seconds": 0.0, "max_lag_seconds": 300.0}
    assert "redis" not in body  # the embedded mode has none
    text = resp.get_data(as_text=True)
    assert "127.0.0.1" not in text and "postgres@" not in text and "sqlite:" not in text
    assert resp.headers["Cache-Control"] == "no-store"


def test_an_outbox_event_overdue_beyond_the_limit_degrades_the_engine(app):
    with app.app_context():
        event = {"hook": "order_placed", "payload": {}, "done": []}
        db.session.add(RetryTask(kind="stage_hook", key="a", payload=event, status="pending",
                                 next_attempt_at=utcnow() - timedelta(minutes=10)))
        db.session.add(RetryTask(kind="stage_hook", key="b", payload=event, status="dead"))
        db.session.add(RetryTask(kind="other.kind", key="c", payload={}, status="pending",  # not a stage hook
                                 next_attempt_at=utcnow() - timedelta(hours=10)))
        db.session.commit()
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "degraded" and body["problems"] == ["outbox"]
    assert body["outbox"]["pending"] == 1 and body["outbox"]["dead"] == 1
    assert 590 <= body["outbox"]["lag_seconds"] <= 700
    # an event waiting for a later retry is not late
    with app.app_context():
        db.session.execute(db.update(RetryTask).where(RetryTask.key == "a")
                           .values(next_attempt_at=utcnow() + timedelta(minutes=5)))
        db.session.commit()
    assert app.test_client().get("/healthz").status_code == 200
    # an event leased to a relay that died: late once its lease has run out by more than the limit
    with app.app_context():
        db.session.execute(db.update(RetryTask).where(RetryTask.key == "a").values(
            status="running", attempts=1, leased_until=utcnow() - timedelta(minutes=8)))
        db.session.commit()
    body = app.test_client().get("/healthz").get_json()
    assert body["problems"] == ["outbox"] and 470 <= body["outbox"]["lag_seconds"] <= 600


def test_an_unreachable_database_is_a_503_naming_it(tmp_path):
    # a PostgreSQL server that is not there (the app starts without touching the database)
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"
    broken = create_app({"DATABASE_URL": url, "INSTANCE": str(tmp_path), "TESTING": True, "REDIS_URL": None})
    resp = broken.test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "degraded" and body["problems"] == ["database"]
    assert body["database"] == {"ok": False, "error": "OperationalError"} and "outbox" not in body


def test_with_redis_the_queue_is_reported_and_an_unreachable_redis_is_a_503(tmp_path, request):
    try:
        Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    queue_name = f"health-{uuid.uuid4().hex[:8]}"
    app = make_app("sqlite", tmp_path, request, REDIS_URL=REDIS_URL, QUEUE=queue_name)
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["redis"] == {"ok": True, "queue": queue_name, "queued": 0, "failed": 0}
    (tmp_path / "down").mkdir()
    down = make_app("sqlite", tmp_path / "down", request,
                    REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0", REDIS_ENQUEUE_TIMEOUT=0.5)
    resp = down.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["problems"] == ["redis"] and resp.get_json()["redis"]["ok"] is False
