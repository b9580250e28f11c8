"""Background work: the outbox relay that calls stage hooks, and periodic sweeps.

Stage hooks never run in the request. After the commit that wrote them:

* embedded mode (no ``REDIS_URL``): the events are handed to the app's
  background delivery thread (one per app and process, started lazily). The
  rows were written leased to this process (``next_attempt_at`` = now +
  ``LEASE``), so the sweeper only takes an event over if the process dies
  before delivering it. ``drain(app)`` waits until the thread has delivered
  what it was handed; the ``hookshop`` command drains at its end, and the
  interpreter at exit (bounded by ``DELIVERY_DRAIN_TIMEOUT``).
* production (``REDIS_URL``): the events are enqueued on rq (queue
  ``HOOKSHOP_QUEUE``) and ``hookshop worker`` runs the jobs plus the sweeper.
  If Redis cannot be reached the request still succeeds: the failure is
  logged once and the events wait, due, for the sweeper.

Delivery is at least once. Each event is first *claimed* (a lease written in
its own short transaction, so two relays do not run it at once); each plugin's
success is committed separately, so a retry calls only the plugins that
failed. No transaction is open while a plugin runs. A plugin that raises
never affects the order: its error is recorded on the event and it is retried
with back-off (``HOOKSHOP_OUTBOX_RETRY_DELAYS``), then the event is marked
``dead`` (visible with ``hookshop outbox``).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from engine.db import as_utc, db, transaction, utcnow
from engine.delivery import background
from engine.delivery import drain as drain  # jobs.drain(app): part of this module's interface
from engine.domain.privacy import redact_text, redacted_traceback
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
OUTBOX = OutboxEvent.__table__
_LOADERS = {
    "order": ("order_id", Order),
    "payment": ("payment_id", Payment),
    "shipment": ("shipment_id", Shipment),
    "order_return": ("return_id", Return),
    "product": ("product_id", Product),
    "purchase_order": ("purchase_order_id", PurchaseOrder),
}
_worker_app = None


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
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        background(app).hand(events)
        return
    ids = [e[0] if isinstance(e, tuple) else e for e in events]
    state = app.extensions.setdefault("hookshop_rq", {})
    try:
        queue().enqueue(run_events, ids, job_timeout=600)
    except Exception as exc:  # Redis down, refused, timed out: the order stands, the events wait
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


def run_events(event_ids: list[int]) -> None:
    """The rq job: deliver events inside the worker's app."""
    with _app().app_context():
        deliver_events(event_ids)


def _app():
    global _worker_app
    if _worker_app is None:
        from engine.app import create_app

        _worker_app = create_app()
    return _worker_app


def deliver_events(events: list, now: datetime | None = None) -> None:
    """Deliver events, lowest id first, given as ids or as ``(id, hook, payload, created_at)`` leased
    to this process when they were written."""
    hook = registry().pm.hook
    known = [e for e in events if isinstance(e, tuple)]
    ids = [e for e in events if not isinstance(e, tuple)]
    if ids:
        known += [(eid, name, None, None) for eid, name in db.session.execute(
            select(OutboxEvent.id, OutboxEvent.hook).where(OutboxEvent.id.in_(ids))).all()]
        db.session.commit()
    known.sort(key=lambda e: e[0])
    idle = [e[0] for e in known if not getattr(hook, e[1]).get_hookimpls()]
    if idle:  # nobody listens: done at once, in one statement
        with transaction():
            db.session.execute(update(OUTBOX).where(OUTBOX.c.id.in_(idle), OUTBOX.c.status == "pending")
                               .values(status="done", processed_at=utcnow()))
    for event_id, name, payload, created_at in known:
        if event_id not in idle:
            deliver_event(event_id, now, leased=(name, payload, created_at) if payload is not None else None)


def _claim(event_id: int, now: datetime) -> bool:
    with transaction():
        result = db.session.execute(update(OUTBOX).where(
            OUTBOX.c.id == event_id, OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
            .values(next_attempt_at=now + LEASE))
    return result.rowcount == 1


def _arguments(event_id: int, hook: str, payload: dict, created_at) -> dict:
    payload = payload or {}
    args = {"event": {"id": event_id, "hook": hook, "created_at": as_utc(created_at).isoformat(),
                      "payload": payload}}
    for name, (key, model) in _LOADERS.items():
        if key in payload:
            args[name] = db.session.get(model, payload[key])
    for name in ("reason", "amount", "available"):
        if name in payload:
            args[name] = payload[name]
    return args


def deliver_event(event_id: int, now: datetime | None = None, leased: tuple | None = None) -> str:
    """Call every plugin that has not yet handled the event; returns its status after.

    ``leased``: ``(hook, payload, created_at)`` of an event this process leased when it
    wrote it (the background delivery): no claim and no read of the row are needed.
    Every write here is its own short transaction (``BEGIN IMMEDIATE`` on SQLite), and
    none is open while a plugin runs."""
    now = now or utcnow()
    if leased is None:
        if not _claim(event_id, now):
            return "skipped"
        hook, payload, done, created_at = db.session.execute(select(
            OUTBOX.c.hook, OUTBOX.c.payload, OUTBOX.c.done_plugins, OUTBOX.c.created_at)
            .where(OUTBOX.c.id == event_id)).one()
        done = list(done or [])
    else:
        (hook, payload, created_at), done = leased, []
    impls = getattr(registry().pm.hook, hook).get_hookimpls()
    args = _arguments(event_id, hook, payload, created_at)
    db.session.commit()  # end the read: a plugin may take its time (a webhook, a provider)
    errors = []
    # pluggy's own call order: last registered first
    todo = [impl for impl in reversed(impls) if impl.plugin_name not in done]
    tracing = bool(current_app.config.get("TRACE_PLUGINS"))
    for index, impl in enumerate(todo):
        started = time.perf_counter()
        try:
            impl.function(**{name: args.get(name) for name in impl.argnames})
        except Exception as exc:
            if tracing:
                log_hook_call(hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, exc,
                                      event_id)
            db.session.rollback()
            log.warning("plugin %s failed on %s #%s: %s", impl.plugin_name, hook, event_id, redact_text(exc))
            # last_error is shown by `hookshop outbox`: masked like a log line
            errors.append(redact_text(f"{impl.plugin_name}: {exc!r}\n{traceback.format_exc(limit=5)}"))
            continue
        if tracing:
            log_hook_call(hook, [impl.plugin_name], (time.perf_counter() - started) * 1000, None, event_id)
        done = [*done, impl.plugin_name]
        values = {"done_plugins": done}
        if index == len(todo) - 1 and not errors:  # the last one: the event is done in the same commit
            values.update(status="done", processed_at=utcnow())
        with transaction():
            db.session.execute(update(OUTBOX).where(OUTBOX.c.id == event_id).values(**values))
    if not errors:
        if not todo:
            with transaction():
                db.session.execute(update(OUTBOX).where(OUTBOX.c.id == event_id)
                                   .values(status="done", processed_at=utcnow()))
        return "done"
    delays = current_app.config.get("OUTBOX_RETRY_DELAYS") or [60]
    with transaction():
        attempts = db.session.execute(select(OUTBOX.c.attempts).where(OUTBOX.c.id == event_id)).scalar_one() + 1
        values = {"attempts": attempts, "last_error": "\n".join(errors)[-4000:]}
        if attempts > len(delays):
            values["status"] = "dead"
        else:
            values["next_attempt_at"] = now + timedelta(seconds=delays[attempts - 1])
        db.session.execute(update(OUTBOX).where(OUTBOX.c.id == event_id).values(**values))
    return values.get("status", "pending")


def relay_due(now: datetime | None = None, limit: int = 100) -> int:
    """Deliver pending events whose time has come (retries, or events a crash left behind)."""
    now = now or utcnow()
    ids = list(db.session.execute(select(OutboxEvent.id).where(
        OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now)
        .order_by(OutboxEvent.id).limit(limit)).scalars())
    db.session.commit()
    for event_id in ids:
        deliver_event(event_id, now)
    return len(ids)


def complete_due_followups(now: datetime | None = None) -> int:
    """Complete orders delivered ``FOLLOWUP_AFTER`` (or ``FOLLOWUP_DAYS``) ago: the follow-up is their
    ``order_completed`` (payload ``followup: true``; a notifications plugin sends the e-mail from it)."""
    from engine.errors import DomainError
    from engine.models import OrderEvent
    from engine.services import orders as order_service

    delay = order_service.followup_delay()
    if delay is None:
        return 0
    cutoff = (now or utcnow()) - delay
    ids = list(db.session.execute(select(Order.id).join(OrderEvent, OrderEvent.order_id == Order.id).where(
        Order.status == "delivered", OrderEvent.kind == "order_delivered", OrderEvent.created_at <= cutoff)).scalars())
    db.session.commit()
    for order_id in ids:
        try:
            order_service.complete_order(order_id, followup=True)
        except DomainError:
            db.session.rollback()
    return len(ids)


def retry_stale_refunds(now: datetime | None = None) -> int:
    """Settle refunds a dead process left pending (``payments.retry_stale_refunds``)."""
    from engine.services import payments

    return payments.retry_stale_refunds(now)


def run_periodic_tasks(now: datetime | None = None) -> list[str]:
    """Call every plugin's ``periodic_tasks``; one that raises is logged and the others still run.

    Returns the names of the plugins that failed."""
    now = now or utcnow()
    failed = []
    for impl in registry().pm.hook.periodic_tasks.get_hookimpls():
        try:
            impl.function(**{name: now for name in impl.argnames})
        except Exception as exc:
            db.session.rollback()
            log.error("periodic task of plugin %s failed: %s", impl.plugin_name, redacted_traceback(exc))
            failed.append(impl.plugin_name)
    return failed


def sweep(app, interval: float = 5.0, stop: threading.Event | None = None) -> threading.Thread:
    """Start a daemon thread that retries due events and completes follow-ups every ``interval`` seconds."""
    stop = stop or threading.Event()

    def loop():
        rounds = 0
        while not stop.wait(interval):
            rounds += 1
            try:
                with app.app_context():
                    relay_due()
                    complete_due_followups()
                    retry_stale_refunds()
                    run_periodic_tasks()
                    if rounds % max(1, int(3600 / interval)) == 1:  # hourly: forget old Idempotency-Keys
                        from engine.services.auth import purge_idempotency

                        purge_idempotency(app.config.get("IDEMPOTENCY_TTL_HOURS") or 24)
            except Exception as exc:  # the sweeper must survive a database hiccup
                log.error("outbox sweep failed: %s", redacted_traceback(exc))

    thread = threading.Thread(target=loop, name="hookshop-sweeper", daemon=True)
    thread.stop = stop
    thread.start()
    return thread
