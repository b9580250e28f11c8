"""The engine's one leased, transactional retry queue (issue #15): table ``retry_tasks``.

A *kind* (declared by a plugin through ``register_task_kinds``, see ``TaskKind``) names a handler and its
rules: the delays between attempts, the jitter, the batch size, the lease, and callbacks. Work is
*enqueued* inside the caller's transaction (``enqueue``: no commit; ``(kind, key)`` is unique, so
enqueueing the same key twice is one task), so a task exists exactly when the change that asked for it
committed. The sweeper (``engine.jobs.run_periodic_tasks``) calls ``run_due``: it *claims* due tasks in a
short write transaction of its own (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's one writer lock
otherwise), writing a lease (``leased_until``), calls the kind's handler with no transaction open, then
records each outcome in one transaction through ``decide``, the one outcome function: success -> ``done``;
a failure -> ``pending`` again at the next delay of the schedule (back-off with jitter), or ``dead`` after
the last delay (or at once when the handler says the failure is final). Nothing ever sleeps: a retry is a
``next_attempt_at`` in the future. A worker that dies leaves its tasks leased; once the lease runs out
another worker claims them again (at least once: handlers are idempotent on the task's key).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult

from engine.db import before_outside_call, db, transaction, utcnow
from engine.domain.privacy import redact_text
from engine.models.retry import RetryTask

log = logging.getLogger("hookshop.retry_queue")
TASKS = RetryTask.__table__
LEASE = timedelta(minutes=5)
STATUSES = ("pending", "running", "done", "dead")
KEEP_DONE = timedelta(days=7)  # done tasks are purged after this (``purge_done``, hourly from the sweeper)


class Task(NamedTuple):
    """A task as its handler sees it (a snapshot: never an ORM row)."""

    id: int
    kind: str
    key: str
    payload: dict
    attempts: int  # claims so far, this one included
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What a handler reports for one task: ``ok``, else ``error`` and whether a retry may help
    (``retry=False``: dead at once, e.g. a 410 Gone). ``detail`` is handed to the kind's callbacks;
    ``payload``, when given, replaces the task's payload (progress a retry starts from, e.g. the plugins
    that already handled a stage-hook event)."""

    ok: bool
    error: str | None = None
    retry: bool = True
    detail: Any = None
    payload: dict | None = None


def success(detail: Any = None) -> Outcome:
    return Outcome(True, detail=detail)


def failure(error: str, *, retry: bool = True, detail: Any = None, payload: dict | None = None) -> Outcome:
    return Outcome(False, error=error, retry=retry, detail=detail, payload=payload)


class Decision(NamedTuple):
    """The outcome function's verdict: the task's new status and, when pending, its next attempt; ``at`` is the
    round's ``now`` (tests move it forward)."""

    status: str
    next_attempt_at: datetime | None
    at: datetime


def _value(rule):
    return rule() if callable(rule) else rule


@dataclass(frozen=True)
class TaskKind:
    """A kind of task and its rules. Every rule may be a value or a function without arguments (read at
    each use, so a setting changed at run time applies).

    * ``handler(tasks) -> [Outcome]``: one outcome per task, same order (raising fails them all, retried);
      called with no transaction open, at most ``batch`` tasks at once.
    * ``delays``: seconds before the 1st, 2nd, ... retry; after the last, a failure is ``dead``.
    * ``jitter``: each delay is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``.
    * ``lease``: how long a claim holds its tasks (longer than the handler can take).
    * ``max_batches``: batches one ``run_due`` round runs at most; ``stop_on_failure``: a failed batch ends
      the kind's round (the other side is unwell: the back-off decides when to try again).
    * ``enabled()``: False skips the kind (its tasks wait, pending).
    * ``on_outcome(task, outcome, decision)``, ``on_dead(task, outcome)``, ``on_requeue(tasks)``: called
      inside the transaction that records the outcome (or the requeue): mirror it in the plugin's rows.
    """

    name: str
    handler: Callable[[list[Task]], list[Outcome]]
    delays: Sequence[float] | Callable[[], Sequence[float]] = (60, 300, 1800, 3600)
    jitter: float | Callable[[], float] = 0.0
    batch: int | Callable[[], int] = 1
    lease: timedelta | Callable[[], timedelta] = LEASE
    max_batches: int = 20
    stop_on_failure: bool = False
    enabled: Callable[[], bool] | None = None
    on_outcome: Callable[[Task, Outcome, Decision], None] | None = None
    on_dead: Callable[[Task, Outcome], None] | None = None
    on_requeue: Callable[[list[Task]], None] | None = None


def check_kinds(kinds: list) -> dict[str, TaskKind]:
    """The kinds plugins registered, by name; a duplicate name or a non-TaskKind stops start-up."""
    from engine.errors import PluginError

    found: dict[str, TaskKind] = {}
    for kind in kinds:
        if not isinstance(kind, TaskKind):
            raise PluginError(f"register_task_kinds returned {kind!r}, not an engine.plugin_api.TaskKind")
        if kind.name in found:
            raise PluginError(f"two plugins register the task kind {kind.name!r}")
        found[kind.name] = kind
    return found


def task_kinds() -> dict[str, TaskKind]:
    """The current app's registered kinds (the core's ``stage_hook`` and the plugins')."""
    from engine.plugins import registry

    return registry().task_kinds


# --------------------------------------------------------------------------- enqueue


def enqueue(kind: str, key: str, payload: dict | None = None, *, at: datetime | None = None,
            hold: timedelta | None = None) -> int | None:
    """Add a task inside the caller's transaction (no commit); returns its id, or None when the kind already
    has a task with this key (idempotent). ``at``: its first attempt (default now). ``hold``: the task is
    written claimed by the caller for that long (it runs it right after commit with ``run_held``; if the
    process dies first, the lease runs out and the sweeper takes it over)."""
    now = utcnow()
    values: dict[str, Any] = {"kind": kind, "key": str(key), "payload": payload or {}, "status": "pending",
                              "attempts": 0, "next_attempt_at": at or now, "created_at": now, "updated_at": now}
    if hold is not None:
        values.update(status="running", attempts=1, leased_until=now + hold)
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(TASKS).values(**values)
                 .on_conflict_do_nothing(index_elements=["kind", "key"]).returning(TASKS.c.id))
    return db.session.execute(statement).scalar()


# --------------------------------------------------------------------------- claim and run


def _due(now: datetime):
    return or_(and_(TASKS.c.status == "pending", TASKS.c.next_attempt_at <= now),
               and_(TASKS.c.status == "running", TASKS.c.leased_until <= now))


def claim(now: datetime, kinds: Sequence[str] | None = None, limit: int = 1, *, lease: timedelta = LEASE,
          ids: Sequence[int] | None = None) -> list[Task]:
    """Lease up to ``limit`` due tasks (pending and due, or running with an expired lease), oldest id first,
    in one short transaction of their own; each claim counts as an attempt. PostgreSQL picks them with
    ``FOR UPDATE SKIP LOCKED`` (two workers never wait for each other nor take the same task); SQLite's
    write transaction serialises the conditional UPDATE."""
    due = select(TASKS.c.id).where(_due(now)).order_by(TASKS.c.id).limit(limit)
    if kinds is not None:
        due = due.where(TASKS.c.kind.in_(list(kinds)))
    if ids is not None:
        due = due.where(TASKS.c.id.in_(list(ids)))
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    chosen = due.cte("chosen")
    statement = (update(TASKS).where(TASKS.c.id.in_(select(chosen.c.id)))
                 .values(status="running", leased_until=now + lease, attempts=TASKS.c.attempts + 1, updated_at=now)
                 .returning(TASKS.c.id, TASKS.c.kind, TASKS.c.key, TASKS.c.payload, TASKS.c.attempts,
                            TASKS.c.created_at))
    with transaction():
        rows = db.session.execute(statement).all()
    return sorted(Task(r.id, r.kind, r.key, r.payload or {}, r.attempts, r.created_at) for r in rows)


def run_due(now: datetime | None = None, kinds: Sequence[str] | None = None) -> int:
    """Run every due task of the registered, enabled kinds (``kinds``: only those), batch by batch; returns
    how many ran. Tasks of a kind no plugin registers wait (pending)."""
    now = now or utcnow()
    ran = 0
    for kind in task_kinds().values():
        if (kinds is not None and kind.name not in kinds) or (kind.enabled is not None and not kind.enabled()):
            continue
        batch = max(1, int(_value(kind.batch)))
        for _ in range(kind.max_batches):
            tasks = claim(now, [kind.name], batch, lease=_value(kind.lease))
            outcomes = execute(kind, tasks, now) if tasks else []
            ran += len(tasks)
            if len(tasks) < batch or (kind.stop_on_failure and not all(o.ok for o in outcomes)):
                break
    return ran


def run_held(task_ids: Sequence[int], now: datetime | None = None) -> int:
    """Run tasks this process holds (enqueued with ``hold``, or claimed), one kind at a time; returns how many."""
    if not task_ids:
        return 0
    rows = db.session.execute(select(TASKS).where(TASKS.c.id.in_(list(task_ids)), TASKS.c.status == "running")
                              .order_by(TASKS.c.id)).all()
    before_outside_call()  # end the read: the handler may take its time
    kinds = task_kinds()
    tasks = [Task(r.id, r.kind, r.key, r.payload or {}, r.attempts, r.created_at) for r in rows if r.kind in kinds]
    for name in dict.fromkeys(t.kind for t in tasks):
        execute(kinds[name], [t for t in tasks if t.kind == name], now or utcnow())
    return len(tasks)


def execute(kind: TaskKind, tasks: list[Task], now: datetime) -> list[Outcome]:
    """Call the handler (no transaction open), then record what it reported."""
    before_outside_call()  # nothing stays open while the handler talks to the outside world
    try:
        outcomes = list(kind.handler(tasks))
        if len(outcomes) != len(tasks):
            raise ValueError(f"the handler of {kind.name} answered {len(outcomes)} outcomes for {len(tasks)} tasks")
    except Exception as exc:  # a handler that raises fails its batch: retried like any failure
        if db.session.info.get("tx_depth", 0) == 0:
            db.session.rollback()
        log.warning("task handler %s failed: %s", kind.name, redact_text(exc))
        outcomes = [failure(redact_text(f"{type(exc).__name__}: {exc}"))] * len(tasks)
    record(kind, tasks, outcomes, now)
    return outcomes


# --------------------------------------------------------------------------- outcomes


def backoff(delays: Sequence[float], attempts: int, now: datetime, jitter: float = 0.0) -> datetime | None:
    """When the next attempt is due after ``attempts`` failed ones, or None when the delays ran out."""
    if attempts > len(delays):
        return None
    spread = max(0.0, min(jitter, 1.0))
    factor = random.uniform(1 - spread, 1 + spread) if spread else 1.0
    return now + timedelta(seconds=float(delays[attempts - 1]) * factor)


def decide(kind: TaskKind, task: Task, outcome: Outcome, now: datetime) -> Decision:
    """The one outcome function: done on success; else pending at the next delay, or dead after the last."""
    if outcome.ok:
        return Decision("done", None, now)
    at = backoff(list(_value(kind.delays)), task.attempts, now, float(_value(kind.jitter))) if outcome.retry else None
    return Decision("dead", None, now) if at is None else Decision("pending", at, now)


def record(kind: TaskKind, tasks: list[Task], outcomes: list[Outcome], now: datetime) -> None:
    """Write each task's outcome and call the kind's callbacks, in one transaction. A task whose claim is no
    longer this worker's (its lease ran out and another worker claimed it: ``attempts`` moved on) is left
    to that worker. Successes of a kind without ``on_outcome`` are written together (one UPDATE per
    ``attempts`` value: a batch of first attempts is one statement)."""
    plain: dict[int, list[int]] = {}
    with transaction():
        for task, outcome in zip(tasks, outcomes, strict=True):
            if outcome.ok and kind.on_outcome is None and outcome.payload is None:
                plain.setdefault(task.attempts, []).append(task.id)
                continue
            _record_one(kind, task, outcome, decide(kind, task, outcome, now))
        for attempts, ids in plain.items():
            db.session.execute(update(TASKS).where(TASKS.c.id.in_(ids), TASKS.c.status == "running",
                                                   TASKS.c.attempts == attempts)
                               .values(status="done", leased_until=None, updated_at=utcnow()))


def _record_one(kind: TaskKind, task: Task, outcome: Outcome, decision: Decision) -> None:
    values: dict[str, Any] = {"status": decision.status, "leased_until": None, "updated_at": utcnow()}
    if decision.next_attempt_at is not None:
        values["next_attempt_at"] = decision.next_attempt_at
    if outcome.error is not None:
        values["last_error"] = outcome.error[-4000:]
    if outcome.payload is not None:
        values["payload"] = outcome.payload
    mine = cast(CursorResult, db.session.execute(update(TASKS).where(
        TASKS.c.id == task.id, TASKS.c.status == "running", TASKS.c.attempts == task.attempts).values(**values)))
    if mine.rowcount != 1:
        return
    if kind.on_outcome is not None:
        kind.on_outcome(task, outcome, decision)
    if decision.status == "dead":
        log.warning("task %s %s (key %s) is dead after %s attempts: %s", task.id, kind.name, task.key,
                    task.attempts, redact_text(outcome.error or ""))
        if kind.on_dead is not None:
            kind.on_dead(task, outcome)


def extend_lease(tasks: Sequence[Task], lease: timedelta = LEASE) -> None:
    """Hold claimed tasks longer (a slow handler half-way through its batch), in a transaction of its own."""
    if not tasks:
        return
    with transaction():
        for attempts in {t.attempts for t in tasks}:
            db.session.execute(update(TASKS).where(
                TASKS.c.id.in_([t.id for t in tasks if t.attempts == attempts]), TASKS.c.status == "running",
                TASKS.c.attempts == attempts).values(leased_until=utcnow() + lease))


# --------------------------------------------------------------------------- staff and plugins


def requeue(ids: Sequence[int] | None = None, *, kind: str | None = None, keys: Sequence[str] | None = None,
            dead_only: bool = False, now: datetime | None = None) -> int:
    """Put dead (or waiting: ``dead_only`` False) tasks back, due now with a fresh schedule: by id, or a kind's
    (``keys``: only those). Joins the caller's transaction if there is one; returns how many."""
    if ids is None and kind is None:
        raise ValueError("requeue needs task ids or a kind")
    now = now or utcnow()
    wanted = select(TASKS).where(TASKS.c.status.in_(("dead",) if dead_only else ("dead", "pending")))
    if ids is not None:
        wanted = wanted.where(TASKS.c.id.in_(list(ids)))
    if kind is not None:
        wanted = wanted.where(TASKS.c.kind == kind)
    if keys is not None:
        wanted = wanted.where(TASKS.c.key.in_([str(k) for k in keys]))
    with transaction():
        rows = db.session.execute(wanted.with_for_update()).all()
        if not rows:
            return 0
        db.session.execute(update(TASKS).where(TASKS.c.id.in_([r.id for r in rows]))
                           .values(status="pending", attempts=0, next_attempt_at=now, leased_until=None, updated_at=now))
        kinds = task_kinds()
        for name in dict.fromkeys(r.kind for r in rows):
            callback = kinds[name].on_requeue if name in kinds else None
            if callback is not None:
                callback([Task(r.id, r.kind, r.key, r.payload or {}, 0, r.created_at) for r in rows if r.kind == name])
    return len(rows)


def discard(kind: str, keys: Sequence[str]) -> int:
    """Delete a kind's tasks that are not done (their work is cancelled), inside the caller's transaction."""
    if not keys:
        return 0
    statement = delete(TASKS).where(TASKS.c.kind == kind, TASKS.c.key.in_([str(k) for k in keys]), TASKS.c.status != "done")
    return cast(CursorResult, db.session.execute(statement)).rowcount


def get_task(kind: str, key: str) -> RetryTask | None:
    return db.session.execute(select(RetryTask).where(RetryTask.kind == kind, RetryTask.key == str(key))).scalar()


def list_tasks(status: str | None = None, kind: str | None = None, limit: int = 100) -> list[RetryTask]:
    """Tasks newest first, by status and kind."""
    stmt = select(RetryTask).order_by(RetryTask.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(RetryTask.status == status)
    if kind:
        stmt = stmt.where(RetryTask.kind == kind)
    return list(db.session.execute(stmt).scalars())


def counts() -> dict[str, dict[str, int]]:
    """``{kind: {status: n}}`` for health and the CLI."""
    found: dict[str, dict[str, int]] = {}
    for kind, status, n in db.session.execute(select(TASKS.c.kind, TASKS.c.status, func.count())
                                              .group_by(TASKS.c.kind, TASKS.c.status)):
        found.setdefault(kind, dict.fromkeys(STATUSES, 0))[status] = int(n)
    return found


def purge_done(now: datetime | None = None, keep: timedelta = KEEP_DONE) -> int:
    """Forget done tasks older than ``keep`` (the plugins keep their own record of the work)."""
    with transaction():
        statement = delete(TASKS).where(TASKS.c.status == "done", TASKS.c.updated_at < (now or utcnow()) - keep)
        return cast(CursorResult, db.session.execute(statement)).rowcount
