"""The embedded mode's background delivery thread: stage hooks off the request path.

Without ``REDIS_URL``, ``engine.jobs.dispatch_events`` hands the events a
transaction wrote to the app's ``BackgroundDelivery`` right after its commit,
and the request goes on. The rows were written leased to this process
(``next_attempt_at`` = now + ``jobs.LEASE``): if the process dies first, the
sweeper (``hookshop serve``'s, or ``hookshop relay``) delivers them after the
lease. ``drain(app)`` waits until the thread has delivered everything handed
to it: tests call it after each request, the ``hookshop`` command at its end,
and the interpreter at exit, each bounded by ``DELIVERY_DRAIN_TIMEOUT``.
"""

from __future__ import annotations

import atexit
import heapq
import logging
import os
import threading
import time
import weakref

log = logging.getLogger("hookshop.jobs")
DRAIN_TIMEOUT = 30.0  # seconds; an app's DELIVERY_DRAIN_TIMEOUT overrides it
IDLE_SECONDS = 10.0  # an idle delivery thread ends (and frees its app); the next hand-over starts another


class BackgroundDelivery:
    """One daemon thread per app that delivers the events handed to it, lowest event id first, in
    its own app context. It survives any exception (the event then stays leased for the sweeper),
    ends after ``IDLE_SECONDS`` without work, and starts again on the next hand-over."""

    def __init__(self, app):
        self.app = app
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._heap: list[tuple] = []
        self._handed = 0
        self._finished = 0
        self._thread: threading.Thread | None = None
        _deliveries.add(self)

    def hand(self, events: list[tuple]) -> None:
        """Queue claimed events ``(id, hook, payload, created_at, key)`` for delivery; returns at once."""
        with self._cond:
            for event in events:
                heapq.heappush(self._heap, tuple(event))
            self._handed += len(events)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hookshop-delivery", daemon=True)
                self._thread.start()
            self._cond.notify()

    def drain(self, timeout: float) -> bool:
        """Wait until every event handed so far (and any handed meanwhile) is delivered."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._finished < self._handed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def backlog(self) -> int:
        """Events handed and not yet delivered."""
        with self._cond:
            return self._handed - self._finished

    def _next(self) -> list[tuple]:
        """The events handed so far, lowest id first, at most ``jobs.BATCH``; empty when idle too long."""
        from engine.jobs import BATCH

        with self._cond:
            if not self._heap:
                self._cond.wait(IDLE_SECONDS)
            if not self._heap:
                self._thread = None  # from now on a hand-over starts a new thread
                return []
            return [heapq.heappop(self._heap) for _ in range(min(BATCH, len(self._heap)))]

    def _done(self, count: int) -> None:
        with self._cond:
            self._finished += count
            self._cond.notify_all()

    def _run(self) -> None:
        from engine.jobs import LEASE

        while True:
            events = self._next()
            if not events:
                return
            try:
                with self.app.app_context():
                    _deliver(events)
            except BaseException:  # never die: the events stay leased and the sweeper takes them over
                log.exception("the delivery thread could not deliver outbox events %s; the sweeper delivers "
                              "what is not done after their lease (%g min)",
                              ", ".join(f"#{e[0]} ({e[1]})" for e in events), LEASE.total_seconds() / 60)
            finally:
                self._done(len(events))


def _deliver(events: list[tuple]) -> None:
    from engine import jobs
    from engine.db import db

    try:
        jobs.deliver_leased(events)
    except BaseException:
        db.session.rollback()
        raise


_deliveries: weakref.WeakSet[BackgroundDelivery] = weakref.WeakSet()
_lock = threading.Lock()


def background(app) -> BackgroundDelivery:
    """The app's background delivery (made on first use; a forked process makes its own)."""
    delivery = app.extensions.get("hookshop_delivery")
    if delivery is None or delivery.pid != os.getpid():
        with _lock:
            delivery = app.extensions.get("hookshop_delivery")
            if delivery is None or delivery.pid != os.getpid():
                delivery = app.extensions["hookshop_delivery"] = BackgroundDelivery(app)
    return delivery


def drain(app=None, timeout: float | None = None) -> bool:
    """Wait until the delivery thread of ``app`` (or of every app in this process) has delivered
    everything handed to it. ``timeout`` defaults to the app's ``DELIVERY_DRAIN_TIMEOUT`` (30 s).
    Returns False when time ran out: what is left stays in the outbox, leased, and the sweeper
    delivers it after the lease."""
    from engine.jobs import LEASE

    if app is not None:
        delivery = app.extensions.get("hookshop_delivery")
        targets = [delivery] if delivery is not None and delivery.pid == os.getpid() else []
    else:
        targets = [d for d in list(_deliveries) if d.pid == os.getpid()]
    finished = True
    for delivery in targets:
        seconds = timeout if timeout is not None else float(
            delivery.app.config.get("DELIVERY_DRAIN_TIMEOUT") or DRAIN_TIMEOUT)
        if not delivery.drain(seconds):
            finished = False
            log.warning("%d stage hook deliveries did not finish within %g s; they stay in the outbox and the "
                        "sweeper (`hookshop serve`, `hookshop worker`, `hookshop relay`) delivers them after "
                        "their lease (%g min)", delivery.backlog(), seconds, LEASE.total_seconds() / 60)
    return finished


atexit.register(drain)  # daemon threads still run while atexit handlers do: let them finish, bounded
