"""The sweeper's periodic work: retries that are due (the outbox's and the retry queue's), follow-ups,
stale refunds, the plugins' ``periodic_tasks``. ``engine.jobs`` re-exports these functions."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import select

from engine import retry_queue
from engine.db import db, utcnow
from engine.domain.privacy import redacted_traceback
from engine.models import Order
from engine.plugins import registry

log = logging.getLogger("hookshop.jobs")


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
    """Call every plugin's ``periodic_tasks``, then run the retry queue's due tasks (``retry_queue.run_due``:
    work the plugins' tasks enqueued goes out in the same round); one that raises is logged and the others
    still run.

    Returns the names of the plugins that failed (``retry_queue`` when the queue itself could not run)."""
    now = now or utcnow()
    failed = []
    for impl in registry().pm.hook.periodic_tasks.get_hookimpls():
        try:
            impl.function(**{name: now for name in impl.argnames})
        except Exception as exc:
            db.session.rollback()
            log.error("periodic task of plugin %s failed: %s", impl.plugin_name, redacted_traceback(exc))
            failed.append(impl.plugin_name)
    try:
        retry_queue.run_due(now)
    except Exception as exc:  # a database hiccup: the tasks stay due for the next round
        db.session.rollback()
        log.error("the retry queue failed: %s", redacted_traceback(exc))
        failed.append("retry_queue")
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
                    from engine.jobs import relay_due

                    relay_due()
                    complete_due_followups()
                    retry_stale_refunds()
                    run_periodic_tasks()
                    if rounds % max(1, int(3600 / interval)) == 1:  # hourly: forget old Idempotency-Keys
                        from engine.services.auth import purge_idempotency

                        purge_idempotency(app.config.get("IDEMPOTENCY_TTL_HOURS") or 24)
                        retry_queue.purge_done()
            except Exception as exc:  # the sweeper must survive a database hiccup
                log.error("outbox sweep failed: %s", redacted_traceback(exc))

    thread = threading.Thread(target=loop, name="hookshop-sweeper", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]  # the caller stops the loop through it
    thread.start()
    return thread
