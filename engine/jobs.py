"""Background work: the outbox relay that calls stage hooks, and periodic sweeps.

Stage hooks never run in the request. After the commit that wrote them:

* embedded mode (no ``REDIS_URL``): the events are handed to the app's
  background delivery thread (one per app and process, started lazily). The
  rows were written leased to this process (``next_attempt_at`` = now +
  ``LEASE``), so the sweeper only takes an event over if the process dies
  before delivering it. ``drain(app)`` waits until the thread has delivered
  what it was handed; the ``hookshop`` command drains at its end, and the
  interpreter at exit (bounded by ``DELIVERY_DRAIN_TIMEOUT``).
* production (``REDIS_URL``): a relay job is enqueued on rq (queue
  ``HOOKSHOP_QUEUE``) unless one is already waiting, and ``hookshop worker``
  runs the jobs plus the sweeper; a job delivers every due event in batches.
  If Redis cannot be reached the request still succeeds: the failure is
  logged once and the events wait, due, for the sweeper.

Delivery is at least once. Events are first *claimed* in batches (a lease
written in one short transaction; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two relays never run the same event at once); the events every plugin handled
are marked done together after the batch, and an event with a failing plugin
records the plugins that succeeded, so a retry calls only those that failed. No transaction is open while a plugin runs. A plugin that raises
never affects the order: its error is recorded on the event and it is retried
with back-off (``HOOKSHOP_OUTBOX_RETRY_DELAYS``), then the event is marked
``dead`` (visible with ``hookshop outbox``).
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import select, update

from engine import retry_queue
from engine.db import as_utc, db, transaction, utcnow
from engine.delivery import background
from engine.delivery import drain as drain  # jobs.drain(app): part of this module's interface
from engine.domain.privacy import redact_text
from engine.models import (
    Order,
    OutboxEvent,
    Payment,
    Product,
    PurchaseOrder,
    Return,
    Shipment,
)
from engine.plugins import log_hook_call, registry

log = logging.getLogger("hookshop.jobs")
LEASE = timedelta(minutes=5)
BATCH = 100  # events a relay claims at once
FLUSH_SECONDS = 1.0  # a long batch marks what it delivered done at least this often
JOB_BATCHES = 20  # batches one rq job delivers at most (a busy shop has enqueued the next job meanwhile)
WAITING_FLAG_SECONDS = 60  # a lost job's flag expires: later events enqueue a new one
OUTBOX = OutboxEvent.__table__
_LOADERS: dict[str, tuple[str, Any]] = {
    "order": ("order_id", Order),
    "payment": ("payment_id", Payment),
    "shipment": ("shipment_id", Shipment),
    "order_return": ("return_id", Return),
    "product": ("product_id", Product),
    "purchase_order": ("purchase_order_id", PurchaseOrder),
}
_worker_app = None


class Claimed(NamedTuple):
    """An outbox event leased to this relay."""

    id: int
    hook: str
    payload: dict | None
    created_at: datetime
    done: tuple | list = ()
    attempts: int = 0


def queue():
    """The rq queue this app enqueues on, or None in the embedded mode.

    Its Redis client has short connect and read timeouts (``REDIS_ENQUEUE_TIMEOUT``, 2 s) and one
    immediate retry, so an unreachable Redis costs a request little. ``hookshop worker`` uses a
    client of its own (rq's blocking reads need a long timeout)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    state = current_app.extensions.setdefault("hookshop_rq", {})
    if "queue" not in state:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        from rq import Queue

        seconds = float(current_app.config.get("REDIS_ENQUEUE_TIMEOUT") or 2.0)
        connection = Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds,
                                    retry=Retry(NoBackoff(), 1))
        state["queue"] = Queue(current_app.config.get("QUEUE") or "hookshop", connection=connection)
    return state["queue"]


def dispatch_events(events: list) -> None:
    """Called after the commit that wrote the events: ``(id, hook, payload, created_at)`` tuples
    (embedded mode: already leased to this process at insert) or plain ids. Never raises for a
    delivery problem: the events are committed, and the sweeper delivers what is not handed on."""
    if not events:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # werkzeug's LocalProxy
    if not app.config.get("REDIS_URL"):
        background(app).hand(events)
        return
    ids = [e[0] if isinstance(e, tuple) else e for e in events]
    state = app.extensions.setdefault("hookshop_rq", {})
    q, flag = queue(), None
    try:
        flag = f"{q.name}:relay-job-waiting"
        # one relay job waits at a time: it claims every event due when it starts, these included
        if q.connection.set(flag, "1", nx=True, ex=WAITING_FLAG_SECONDS):
            q.enqueue(run_events, ids, flag, job_timeout=600)
    except Exception as exc:  # Redis down, refused, timed out: the order stands, the events wait
        _forget(q, flag)
        if not state.get("failing"):
            log.warning("could not enqueue stage hooks on Redis (%s: %s); the events stay pending in the "
                        "outbox and are delivered by the sweeper of `hookshop worker` (or `hookshop relay`) "
                        "once Redis answers: check that Redis runs at REDIS_URL. Further failures are "
                        "logged at debug level until an enqueue succeeds.", type(exc).__name__, exc)
        else:
            log.debug("could not enqueue outbox events %s: %s", ids, exc)
        state["failing"] = True
        return
    if state.pop("failing", False):
        log.warning("Redis answers again: stage hooks are enqueued again (events that waited are "
                    "delivered by the sweeper)")


# --------------------------------------------------------------------------- other background jobs

def enqueue(queue_name: str, function: str, *args) -> bool:
    """Run ``function`` (``"package.module:name"``, a module-level function taking ids) as a background job.

    Embedded mode (no ``REDIS_URL``): at once, in this thread (a stage hook already runs off the request).
    Production: on the rq queue ``queue_name`` (one of ``HOOKSHOP_JOB_QUEUES``, which ``hookshop worker``
    works besides ``HOOKSHOP_QUEUE``). Returns False when Redis could not
    take it: the caller keeps its own record of the work (a row with a due time) for its sweep."""
    if not current_app.config.get("REDIS_URL"):
        _call(function, args)
        return True
    try:
        from rq import Queue

        Queue(queue_name, connection=queue().connection).enqueue(run_job, function, list(args), job_timeout=300)
    except Exception as exc:  # Redis down: the work waits for the caller's sweep
        log.warning("could not enqueue %s on the rq queue %r (%s: %s); it is retried by the sweeper",
                    function, queue_name, type(exc).__name__, exc)
        return False
    return True


def _call(function: str, args) -> None:
    import importlib

    module, _, name = function.partition(":")
    getattr(importlib.import_module(module), name)(*args)


def run_job(function: str, args: list) -> None:
    """The rq job of ``enqueue``: call ``function`` inside the worker's app."""
    with _app().app_context():
        _call(function, args)


# --------------------------------------------------------------------------- delivery


def _forget(q, flag: str | None) -> None:
    if flag:
        try:
            q.connection.delete(flag)
        except Exception:  # noqa: BLE001 - Redis is down: the flag expires by itself
            pass


def run_events(event_ids: list[int], flag: str | None = None) -> None:
    """The rq job: deliver every due event (``event_ids`` named the ones whose commit enqueued it) in
    batches of ``BATCH``, at most ``JOB_BATCHES`` batches, inside the worker's app.

    ``dispatch_events`` enqueues a job only when no other waits (the ``flag`` key in Redis). The job
    deletes the flag before its first claim, so an event committed after that enqueues the next job and
    an event committed before it is claimed by this one: none waits for the sweeper, and a busy shop
    costs one job per batch instead of one per order."""
    from rq import get_current_job

    job = get_current_job()
    if job is not None and flag:
        job.connection.delete(flag)
    with _app().app_context():
        for _ in range(JOB_BATCHES):
            if relay_due() < BATCH:
                break


def _app():
    global _worker_app
    if _worker_app is None:
        from engine.app import create_app

        _worker_app = create_app()
    return _worker_app


def deliver_events(event_ids: list[int], now: datetime | None = None) -> int:
    """Claim the given events that are due and not held by another relay, deliver them; returns how many."""
    now = now or utcnow()
    claimed = claim(now, limit=max(len(event_ids), 1), ids=event_ids)
    deliver_claimed(claimed, now)
    return len(claimed)


def deliver_event(event_id: int, now: datetime | None = None) -> str:
    """Claim and deliver one event; returns its status after (``skipped``: not due, or another relay holds it)."""
    now = now or utcnow()
    if not deliver_events([event_id], now):
        return "skipped"
    status = db.session.execute(select(OUTBOX.c.status).where(OUTBOX.c.id == event_id)).scalar_one()
    db.session.commit()
    return status


def relay_due(now: datetime | None = None, limit: int | None = None) -> int:
    """Deliver pending events whose time has come (retries, events a crash left behind, and in the production
    mode every event rq has not run yet), in batches of at most ``BATCH``; returns how many it claimed."""
    now = now or utcnow()
    limit = BATCH if limit is None else limit
    claimed = claim(now, limit)
    deliver_claimed(claimed, now)
    return len(claimed)


def claim(now: datetime, limit: int = BATCH, ids: list[int] | None = None) -> list[Claimed]:
    """Lease due pending events (``ids``, or the oldest ``limit``) to this relay in one statement of its own
    transaction. PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the rows, so two relays never wait
    for each other nor take the same event; SQLite: the same conditional UPDATE under its one writer lock.
    The lease (``next_attempt_at`` = now + ``LEASE``) makes every other relay skip them until it runs out."""
    due = (select(OUTBOX.c.id).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
           .order_by(OUTBOX.c.id).limit(limit))
    if ids is not None:
        if not ids:
            return []
        due = due.where(OUTBOX.c.id.in_(ids))
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    chosen = due.cte("due")
    statement = (update(OUTBOX).where(OUTBOX.c.id.in_(select(chosen.c.id))).values(next_attempt_at=now + LEASE)
                 .returning(OUTBOX.c.id, OUTBOX.c.hook, OUTBOX.c.payload, OUTBOX.c.created_at,
                            OUTBOX.c.done_plugins, OUTBOX.c.attempts))
    with transaction():
        rows = db.session.execute(statement).all()
    return sorted(Claimed(r.id, r.hook, r.payload, r.created_at, tuple(r.done_plugins or ()), r.attempts)
                  for r in rows)


def deliver_leased(events: list[tuple]) -> None:
    """Deliver ``(id, hook, payload, created_at)`` events this process leased when it wrote them (the embedded
    mode's delivery thread): no claim and no read of the rows are needed."""
    deliver_claimed(sorted(Claimed(*event[:4]) for event in events), utcnow())


def deliver_claimed(events: list[Claimed], now: datetime) -> None:
    """Call every plugin that has not yet handled each event, lowest id first; no transaction is open
    while a plugin runs.

    The events every plugin handled are marked done together (one UPDATE per plugin list) when the batch
    ends, or earlier every ``FLUSH_SECONDS``; an event with a failing plugin gets one UPDATE recording the
    plugins that did handle it (a retry skips them), the error and its next attempt. A process that dies
    mid-batch leaves its events leased: after the lease another relay delivers them again (at least once)."""
    if not events:
        return
    hooks = registry().pm.hook
    _preload(events)
    db.session.commit()  # end the read: a plugin may take its time (a webhook, a provider)
    finished: dict[tuple, list[int]] = {}
    claimed_at = flushed = time.monotonic()
    for index, event in enumerate(events):
        if time.monotonic() - claimed_at > LEASE.total_seconds() / 2:  # slow plugins: keep the rest leased
            _renew([e.id for e in events[index:]])
            claimed_at = time.monotonic()
        impls = [impl for impl in reversed(getattr(hooks, event.hook).get_hookimpls())  # pluggy's order
                 if impl.plugin_name not in event.done]
        done, errors = _call_plugins(event, impls)
        if errors:
            _record_failure(event, done, errors, now)
        else:
            finished.setdefault(tuple(done), []).append(event.id)
        if time.monotonic() - flushed > FLUSH_SECONDS:
            _mark_done(finished)
            flushed = time.monotonic()
    _mark_done(finished)


def _preload(events: list[Claimed]) -> None:
    """Load the rows the events name, one query per kind (they then come from the session's identity map)."""
    for key, model in _LOADERS.values():
        wanted = {e.payload[key] for e in events if e.payload and key in e.payload}
        if wanted:
            db.session.execute(select(model).where(model.id.in_(wanted))).scalars().all()


def _call_plugins(event: Claimed, impls: list) -> tuple[list[str], list[str]]:
    done, errors = list(event.done), []  # type: list[str], list[str]
    if not impls:
        return done, errors
    args = _arguments(event)
    tracing = bool(current_app.config.get("TRACE_PLUGINS"))
    for impl in impls:
        started = time.perf_counter()
        try:
            impl.function(**{name: args.get(name) for name in impl.argnames})
        except Exception as exc:
            db.session.rollback()
            if tracing:
                log_hook_call(event.hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, exc, event.id)
            log.warning("plugin %s failed on %s #%s: %s", impl.plugin_name, event.hook, event.id, redact_text(exc))
            # last_error is shown by `hookshop outbox`: masked like a log line
            errors.append(redact_text(f"{impl.plugin_name}: {exc!r}\n{traceback.format_exc(limit=5)}"))
            continue
        if tracing:
            log_hook_call(event.hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, None, event.id)
        done.append(impl.plugin_name)
    db.session.commit()  # a plugin's reads end with it (no statement when nothing is open)
    return done, errors


def _arguments(event: Claimed) -> dict:
    payload = event.payload or {}
    args: dict[str, Any] = {"event": {"id": event.id, "hook": event.hook, "created_at": as_utc(event.created_at).isoformat(),
                      "payload": payload}}
    for name, (key, model) in _LOADERS.items():
        if key in payload:
            args[name] = db.session.get(model, payload[key])
    for name in ("reason", "amount", "available"):
        if name in payload:
            args[name] = payload[name]
    return args


def _mark_done(finished: dict[tuple, list[int]]) -> None:
    if not finished:
        return
    with transaction():
        for done, ids in finished.items():
            db.session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
                               .values(status="done", processed_at=utcnow(), done_plugins=list(done)))
    finished.clear()


def _record_failure(event: Claimed, done: list[str], errors: list[str], now: datetime) -> None:
    delays = current_app.config.get("OUTBOX_RETRY_DELAYS") or [60]
    attempts = event.attempts + 1
    values: dict = {"attempts": attempts, "last_error": "\n".join(errors)[-4000:], "done_plugins": done}
    at = retry_queue.backoff(delays, attempts, now)  # the retry queue's schedule (docs/design-decisions.md)
    if at is None:
        values["status"] = "dead"
    else:
        values["next_attempt_at"] = at
    with transaction():
        db.session.execute(update(OUTBOX).where(OUTBOX.c.id == event.id).values(**values))


def _renew(ids: list[int]) -> None:
    with transaction():
        db.session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
                           .values(next_attempt_at=utcnow() + LEASE))


# the sweeper's periodic work lives in engine.sweeper (re-exported: part of this module's interface)
from engine.sweeper import complete_due_followups as complete_due_followups  # noqa: E402
from engine.sweeper import retry_stale_refunds as retry_stale_refunds  # noqa: E402
from engine.sweeper import run_periodic_tasks as run_periodic_tasks  # noqa: E402
from engine.sweeper import sweep as sweep  # noqa: E402
