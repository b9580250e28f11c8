"""``GET /healthz``: what a load balancer or an orchestrator asks before sending traffic.

One JSON object: the database (a ``SELECT 1``), Redis and the rq queue (depth, failed jobs) when
``REDIS_URL`` is set, and the outbox (stage-hook events waiting, how late the oldest due one is, dead events), and the retry queue
(``tasks``: pending and dead tasks, dead ones per kind).
200 ``{"status": "ok"}`` when the process can serve; 503 ``{"status": "degraded"}`` naming the part
when the database or a configured Redis does not answer, or the oldest due outbox event has waited
longer than ``HEALTH_MAX_OUTBOX_LAG`` seconds (default 300: the stage hooks are not being delivered).
No key is needed and no URL, host or user name is shown.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from engine.db import db, utcnow

DEFAULT_MAX_OUTBOX_LAG = 300.0


def check_health() -> tuple[dict, int]:
    report: dict = {"status": "ok", "database": _database()}
    if report["database"]["ok"]:
        report["outbox"] = _outbox()
        report["tasks"] = _tasks()
    if current_app.config.get("REDIS_URL"):
        report["redis"] = _redis()
    problems = [name for name in ("database", "redis", "outbox") if name in report and not report[name]["ok"]]
    if problems:
        report["status"] = "degraded"
        report["problems"] = problems
    return report, 503 if problems else 200


def _database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.commit()
        return {"ok": True, "kind": db.engine.url.get_backend_name()}
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}


def _outbox() -> dict:
    from engine import outbox

    now = utcnow()
    pending, due = outbox.backlog(now)
    dead = outbox.dead_count()
    db.session.commit()
    lag = max(0.0, (now - due).total_seconds()) if due is not None else 0.0
    limit = float(current_app.config.get("HEALTH_MAX_OUTBOX_LAG") or DEFAULT_MAX_OUTBOX_LAG)
    return {"ok": lag <= limit, "pending": pending, "dead": dead, "lag_seconds": round(lag, 1),
            "max_lag_seconds": limit}


def _tasks() -> dict:
    """The retry queue (``engine.retry_queue``): tasks waiting and dead ones (``hookshop tasks --status dead``),
    in all and per kind. Dead tasks need staff, not a restart: they never make the process unhealthy."""
    from engine import retry_queue

    by_kind = retry_queue.counts()
    db.session.commit()
    return {"ok": True, "pending": sum(c["pending"] + c["running"] for c in by_kind.values()),
            "dead": sum(c["dead"] for c in by_kind.values()),
            "dead_by_kind": {kind: c["dead"] for kind, c in by_kind.items() if c["dead"]}}


def _redis() -> dict:
    from engine import jobs

    try:
        queue = jobs.queue()
        queue.connection.ping()
        return {"ok": True, "queue": queue.name, "queued": queue.count,
                "failed": queue.failed_job_registry.count}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
