"""The outbox as staff, health checks and tests read it: the stage-hook events, which are tasks of the core's
kind ``stage_hook`` on the retry queue (``engine.retry_queue``; delivered by ``engine.jobs``).

A task's payload is ``{"hook": ..., "payload": ..., "done": [plugins that handled it]}``; its id is the
event's id. ``events()`` returns snapshots, never ORM rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select

from engine.db import as_utc, db
from engine.retry_queue import TASKS

KIND = "stage_hook"
WAITING = ("pending", "running")  # not delivered yet: due, retrying, or leased to a relay


class StageEvent(NamedTuple):
    id: int
    hook: str
    payload: dict
    status: str  # pending, running (leased to a relay), done, dead
    attempts: int  # claims so far
    done_plugins: list
    last_error: str | None
    next_attempt_at: datetime
    leased_until: datetime | None
    created_at: datetime


def hook_column():
    """The event's hook as an SQL expression (``json_extract`` on SQLite, ``->>`` on PostgreSQL)."""
    return TASKS.c.payload["hook"].as_string()


def events(status: str | tuple[str, ...] | None = None, hook: str | None = None, *, newest_first: bool = False,
           limit: int | None = None) -> list[StageEvent]:
    """Stage-hook events, oldest first (``newest_first``: the other way), by status and hook."""
    stmt = select(TASKS).where(TASKS.c.kind == KIND)
    if status is not None:
        stmt = stmt.where(TASKS.c.status.in_([status] if isinstance(status, str) else list(status)))
    if hook is not None:
        stmt = stmt.where(hook_column() == hook)
    stmt = stmt.order_by(TASKS.c.id.desc() if newest_first else TASKS.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_event(row) for row in db.session.execute(stmt)]


def _event(row: Any) -> StageEvent:
    payload = row.payload or {}
    return StageEvent(row.id, payload.get("hook", ""), payload.get("payload") or {}, row.status, row.attempts,
                      list(payload.get("done") or ()), row.last_error, row.next_attempt_at, row.leased_until,
                      row.created_at)


def dead_count() -> int:
    return db.session.execute(select(func.count()).where(TASKS.c.kind == KIND, TASKS.c.status == "dead")).scalar_one()


def backlog(now: datetime) -> tuple[int, datetime | None]:
    """Events not delivered yet, and since when the oldest due one has been due: a pending event's next
    attempt, or a running event's expired lease (its relay died); None when nothing is due."""
    waiting = db.session.execute(select(func.count()).where(TASKS.c.kind == KIND,
                                                            TASKS.c.status.in_(WAITING))).scalar_one()
    due_at = func.coalesce(TASKS.c.leased_until, TASKS.c.next_attempt_at)
    oldest = db.session.execute(select(func.min(due_at)).where(TASKS.c.kind == KIND, or_(
        and_(TASKS.c.status == "pending", TASKS.c.next_attempt_at <= now),
        and_(TASKS.c.status == "running", TASKS.c.leased_until <= now)))).scalar()
    return waiting, (as_utc(oldest) if oldest is not None else None)
