"""Background work: the stage-hook relay on the retry queue, rq jobs, and periodic sweeps.

Stage hooks never run in the request. Every event is a task of the core's kind ``stage_hook`` on the
engine's one retry queue (``engine.retry_queue``, table ``retry_tasks``), written in the transaction that
reached the stage (``engine.signals``); the task's id is the event's id. After the commit:

* embedded mode (no ``REDIS_URL``): the tasks were written already claimed by this process (status
  ``running``, leased for ``LEASE``) and are handed to the app's background delivery thread (one per app
  and process, started lazily), which runs them with no read. The sweeper only takes a task over if the
  process dies before recording its outcome. ``drain(app)`` waits until the thread has delivered what it
  was handed; the ``hookshop`` command drains at its end, and the interpreter at exit (bounded by
  ``DELIVERY_DRAIN_TIMEOUT``).
* production (``REDIS_URL``): the tasks are pending and due; a relay job is enqueued on rq (queue
  ``HOOKSHOP_QUEUE``) unless one is already waiting, and ``hookshop worker`` runs the jobs plus the
  sweeper; a job claims due tasks in batches of ``BATCH``. If Redis cannot be reached the request still
  succeeds: the failure is logged once and the tasks wait, due, for the sweeper.

Delivery is at least once. Tasks are claimed in batches (the queue's claim: a lease written in one short
transaction, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two relays never run the same event at once). No
transaction is open while a plugin runs. The outcomes of a batch are recorded together (the queue's
``record``: one UPDATE for the events every plugin handled); an event with a failing plugin keeps the
plugins that succeeded in its payload, so a retry calls only those that failed. A plugin that raises never
affects the order: its error is recorded on the task and the queue retries it with back-off
(``HOOKSHOP_OUTBOX_RETRY_DELAYS``), then the task is ``dead`` (``hookshop outbox --status dead``;
``hookshop tasks requeue --kind stage_hook`` puts it back).
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from engine import retry_queue
from engine.db import as_utc, db, utcnow
from engine.delivery import background
from engine.delivery import drain as drain  # jobs.drain(app): part of this module's interface
from engine.domain.privacy import redact_text
from engine.models import (
    Order,
    Payment,
    Product,
    PurchaseOrder,
    Return,
    Shipment,
)
from engine.plugins import log_hook_call, registry
from engine.retry_queue import TASKS, Outcome, Task, TaskKind

log = logging.getLogger("hookshop.jobs")
KIND = "stage_hook"  # the retry queue's kind of the stage-hook events
LEASE = timedelta(minutes=5)
BATCH = 100  # events a relay claims at once
JOB_BATCHES = 20  # batches one rq job delivers at most (a busy shop has enqueued the next job meanwhile)
WAITING_FLAG_SECONDS = 60  # a lost job's flag expires: later events enqueue a new one
_LOADERS: dict[str, tuple[str, Any]] = {
    "order": ("order_id", Order),
    "payment": ("payment_id", Payment),
    "shipment": ("shipment_id", Shipment),
    "order_return": ("return_id", Return),
    "product": ("product_id", Product),
    "purchase_order": ("purchase_order_id", PurchaseOrder),
}
_worker_app = None


def task_kind() -> TaskKind:
    """The core's kind on the retry queue: one task per stage-hook event, retried on the outbox's schedule."""
    return TaskKind(name=KIND, handler=deliver_tasks, delays=_retry_delays, batch=BATCH, lease=LEASE,
                    max_batches=JOB_BATCHES)


def _retry_delays() -> list:
    return list(current_app.config.get("OUTBOX_RETRY_DELAYS") or [60])


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
    """Called after the commit that wrote the events: ``(id, hook, payload, created_at, key)`` tuples
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
    costs one job per batch instead of one per order. It first waits ``RELAY_GATHER_SECONDS`` (0.05 s)
    with the flag still set: a worker faster than the orders would otherwise run one job per event, and
    rq's bookkeeping per job cost more than the event's delivery."""
    from rq import get_current_job

    job = get_current_job()
    app = _app()
    if job is not None and flag:
        gather = float(app.config.get("RELAY_GATHER_SECONDS") or 0)
        if gather > 0:  # the flag still says "a job waits": what commits meanwhile joins this job's batch
            _gather(min(gather, 5.0))
        job.connection.delete(flag)
    with app.app_context():
        for _ in range(JOB_BATCHES):
            if relay_due() < BATCH:
                break


def _gather(seconds: float) -> None:
    """The relay job's wait before its first claim (``RELAY_GATHER_SECONDS``)."""
    time.sleep(seconds)


def _app():
    global _worker_app
    if _worker_app is None:
        from engine.app import create_app

        _worker_app = create_app()
    return _worker_app


def deliver_events(event_ids: list[int], now: datetime | None = None) -> int:
    """Claim the given events that are due and not held by another relay, deliver them; returns how many."""
    if not event_ids:
        return 0
    now = now or utcnow()
    tasks = retry_queue.claim(now, [KIND], limit=len(event_ids), lease=LEASE, ids=event_ids)
    if tasks:
        retry_queue.execute(_kind(), tasks, now)
    return len(tasks)


def deliver_event(event_id: int, now: datetime | None = None) -> str:
    """Claim and deliver one event; returns its status after (``skipped``: not due, or another relay holds it)."""
    now = now or utcnow()
    if not deliver_events([event_id], now):
        return "skipped"
    status = db.session.execute(select(TASKS.c.status).where(TASKS.c.id == event_id)).scalar_one()
    db.session.commit()
    return status


def relay_due(now: datetime | None = None, limit: int | None = None) -> int:
    """Deliver due events (retries, events a crash left behind, and in the production mode every event rq
    has not run yet): one claim of at most ``limit`` (``BATCH``); returns how many it claimed."""
    now = now or utcnow()
    tasks = retry_queue.claim(now, [KIND], BATCH if limit is None else limit, lease=LEASE)
    if tasks:
        retry_queue.execute(_kind(), tasks, now)
    return len(tasks)


def deliver_leased(events: list[tuple]) -> None:
    """Deliver ``(id, hook, payload, created_at, key)`` events this process wrote already claimed (the
    embedded mode's delivery thread): no claim and no read of the rows are needed."""
    tasks = sorted(Task(e[0], KIND, e[4], {"hook": e[1], "payload": e[2], "done": []}, 1, e[3]) for e in events)
    retry_queue.execute(_kind(), tasks, utcnow())


def _kind() -> TaskKind:
    return retry_queue.task_kinds()[KIND]


def deliver_tasks(tasks: list[Task]) -> list[Outcome]:
    """The kind's handler: call every plugin that has not yet handled each event, lowest id first; one
    outcome per event. No transaction is open while a plugin runs; a slow batch renews the lease of the
    events still to run half-way through it (a process that dies mid-batch leaves them leased: after the
    lease another relay delivers them again, at least once)."""
    if not tasks:
        return []
    hooks = registry().pm.hook
    loaded = _preload(tasks)  # held until the batch is done: the session's identity map keeps no row alive
    db.session.commit()  # end the read: a plugin may take its time (a webhook, a provider)
    outcomes: list[Outcome] = []
    renewed = time.monotonic()
    for index, task in enumerate(tasks):
        if time.monotonic() - renewed > LEASE.total_seconds() / 2:  # slow plugins: keep the rest leased
            retry_queue.extend_lease(tasks[index:], LEASE)
            renewed = time.monotonic()
        hook, already = task.payload.get("hook"), list(task.payload.get("done") or ())
        if not hook or not hasattr(hooks, hook):
            outcomes.append(retry_queue.failure(f"no stage hook named {hook!r}", retry=False))
            continue
        impls = [impl for impl in reversed(getattr(hooks, hook).get_hookimpls())  # pluggy's order
                 if impl.plugin_name not in already]
        done, errors = _call_plugins(task, hook, impls, already)
        outcomes.append(retry_queue.failure("\n".join(errors), payload={**task.payload, "done": done}) if errors
                        else retry_queue.success())
    del loaded  # the batch is done: its rows may go
    return outcomes


def _preload(tasks: list[Task]) -> list:
    """Load the rows the events name, one query per kind (an order with its customer, which most hooks
    read); ``_arguments`` then finds them in the session's identity map. That map holds its rows weakly:
    the caller keeps the returned list until the batch is done, or every row is read again one by one."""
    payloads = [t.payload.get("payload") or {} for t in tasks]
    loaded: list = []
    for key, model in _LOADERS.values():
        wanted = {p[key] for p in payloads if key in p}
        if wanted:
            statement = select(model).where(model.id.in_(wanted))
            if model is Order:
                statement = statement.options(joinedload(Order.customer))
            loaded.extend(db.session.execute(statement).unique().scalars())
    return loaded


def _call_plugins(task: Task, hook: str, impls: list, already: list[str]) -> tuple[list[str], list[str]]:
    done, errors = list(already), []  # type: list[str], list[str]
    if not impls:
        return done, errors
    args = _arguments(task, hook)
    tracing = bool(current_app.config.get("TRACE_PLUGINS"))
    for impl in impls:
        started = time.perf_counter()
        try:
            impl.function(**{name: args.get(name) for name in impl.argnames})
        except Exception as exc:
            db.session.rollback()
            if tracing:
                log_hook_call(hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, exc, task.id)
            log.warning("plugin %s failed on %s #%s: %s", impl.plugin_name, hook, task.id, redact_text(exc))
            # last_error is shown by `hookshop outbox`: masked like a log line
            errors.append(redact_text(f"{impl.plugin_name}: {exc!r}\n{traceback.format_exc(limit=5)}"))
            continue
        if tracing:
            log_hook_call(hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, None, task.id)
        done.append(impl.plugin_name)
    db.session.commit()  # a plugin's reads end with it (no statement when nothing is open)
    return done, errors


def _arguments(task: Task, hook: str) -> dict:
    payload = task.payload.get("payload") or {}
    args: dict[str, Any] = {"event": {"id": task.id, "hook": hook, "created_at": as_utc(task.created_at).isoformat(),
                                      "payload": payload}}
    for name, (key, model) in _LOADERS.items():
        if key in payload:
            args[name] = db.session.get(model, payload[key])
    for name in ("reason", "amount", "available"):
        if name in payload:
            args[name] = payload[name]
    return args


# the sweeper's periodic work lives in engine.sweeper (re-exported: part of this module's interface)
from engine.sweeper import complete_due_followups as complete_due_followups  # noqa: E402
from engine.sweeper import retry_stale_refunds as retry_stale_refunds  # noqa: E402
from engine.sweeper import run_periodic_tasks as run_periodic_tasks  # noqa: E402
from engine.sweeper import sweep as sweep  # noqa: E402
