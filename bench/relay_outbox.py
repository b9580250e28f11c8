"""Background delivery keeps up: orders placed per second and outbox events delivered per second, one run.

On PostgreSQL (a private schema) and the machine's Redis (private rq queue names): a real
``hookshop serve`` with ``REDIS_URL``, one ``hookshop worker`` (rq's SimpleWorker, its sweeper on), and
``--orders`` orders posted from ``--threads`` client threads. Each order writes one ``order_placed``
event; the server enqueues it on rq after the commit and the worker delivers it to the plugins that
listen. Listening: ``bench/relay_listener.py`` (registered with ``HOOKSHOP_EXTRA_PLUGINS``; it reads
the order and its lines), and with ``--bundled`` also the bundled plugins that listen to stage hooks
(channel_webhook without subscriptions, accounting_export, notify_email); without it those are disabled.

``--backlog`` stops the worker while the orders are placed and starts a fresh one after: its
delivered/s is then the worker's top speed on a backlog (what it can absorb), not the arrival rate.

A sampler counts the outbox rows (pending / done) every 0.1 s. Printed: placed/s, delivered/s while
placing, the backlog when the last order was answered, how long the worker took to catch up after, and
delivered/s over the whole run (first order to the last event done). Goal: delivered/s >= placed/s.

    .venv/bin/python bench/relay_outbox.py --orders 2000 --threads 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from place_orders import (  # noqa: E402 - the sibling benchmark's server and client
    PG_URL,
    ROOT,
    Database,
    Server,
    Worker,
    _cleanup_all,
    _cleanups,
    order_bodies,
    run_cli,
    run_engine,
    setup_shop,
)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
OTHER_LISTENERS = "channel_webhook,accounting_export,notify_email"


class Sampler:
    """Counts the outbox (done, all) every ``interval`` seconds on a connection of its own."""

    def __init__(self, db: Database, interval: float = 0.1):
        import psycopg

        self.conn = psycopg.connect(db.url, autocommit=True)
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()
        self.interval = interval
        self.thread = threading.Thread(target=self._run, daemon=True)

    def counts(self) -> tuple[int, int]:
        return self.conn.execute("SELECT count(*) FILTER (WHERE status = 'done'), count(*) FROM retry_tasks "
                                 "WHERE kind = 'stage_hook'").fetchone()

    def _run(self):
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), *self.counts()))
            self.stop.wait(self.interval)

    def wait_until_caught_up(self, timeout: float, after: float = 0.0) -> float | None:
        """The time of the first sample after ``after`` with every event done, or None after ``timeout`` s."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.samples and self.samples[-1][0] > after and self.samples[-1][1] == self.samples[-1][2]:
                return self.samples[-1][0]
            time.sleep(self.interval / 2)
        return None

    def at(self, moment: float) -> tuple[int, int]:
        before = [s for s in self.samples if s[0] <= moment]
        return before[-1][1:] if before else self.samples[0][1:]


def _delete_queues(names: list[str]) -> None:
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(REDIS_URL)
    for name in names:
        queue = Queue(name, connection=connection)
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
        queue.delete(delete_jobs=True)


def bench(args) -> dict:
    db = Database("postgresql", args.pg_url)
    queue = f"bench-relay-{uuid.uuid4().hex[:8]}"
    db.env.update(REDIS_URL=REDIS_URL, HOOKSHOP_QUEUE=queue, HOOKSHOP_JOB_QUEUES=f"{queue}-jobs",
                  HOOKSHOP_EXTRA_PLUGINS="bench_listener=relay_listener:listener",
                  PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH), str(ROOT), os.environ.get("PYTHONPATH")])))
    if not args.bundled:
        db.env["HOOKSHOP_PLUGINS_DISABLED"] = OTHER_LISTENERS
    _cleanups.append(lambda: _delete_queues([queue, f"{queue}-jobs"]))
    run_cli(db, "init")
    server = Server(db, args.server_threads)
    key = setup_shop(db, server.port)
    worker = Worker(db)
    sampler = Sampler(db)
    sampler.thread.start()
    if sampler.wait_until_caught_up(60) is None:  # the setup's events: the worker runs
        raise SystemExit("the worker did not deliver the setup's events within 60 s; see " + worker.log_path)
    if args.backlog:
        worker.stop()  # the orders pile up in the outbox; a fresh worker then works the backlog off
    base_done, base_all = sampler.counts()
    cpu_before = worker.cpu_seconds()
    placed, errors = run_engine(server.port, key, order_bodies(args.orders, args.threads), warmup=0)
    placing_ended = time.perf_counter()
    started = placing_ended - placed["seconds"]
    if args.backlog:
        worker = Worker(db)
        started = placing_ended = time.perf_counter()
        cpu_before = 0.0
    caught_up = sampler.wait_until_caught_up(args.drain_timeout, after=placing_ended)
    max_backlog = max((a - d for t, d, a in sampler.samples if started <= t <= placing_ended), default=0)
    if args.backlog:  # from the fresh worker's first delivery (its start-up is not delivery)
        started = next((t for t, done, _ in sampler.samples if t >= placing_ended and done > base_done), started)
    done_then, all_then = sampler.at(placing_ended)
    final_done, final_all = sampler.counts()
    worker_cpu = worker.cpu_seconds() - cpu_before
    sampler.stop.set()
    worker.stop()
    server.stop()
    events = final_all - base_all
    result = {
        "orders": placed["orders"], "failed_requests": len(errors), "placed_per_second": placed["per_second"],
        "p95_ms": placed["p95_ms"], "events": events,
        "delivered_while_placing": done_then - base_done,
        "delivered_per_second_while_placing": round((done_then - base_done) / placed["seconds"], 1),
        "backlog_when_placing_ended": all_then - done_then,
        "max_backlog_while_placing": max_backlog,
        "catch_up_seconds": round(caught_up - placing_ended, 2) if caught_up else None,
        "delivered_per_second": round(events / (caught_up - started), 1) if caught_up else None,
        "backlog_after": final_all - final_done,
        "worker_cpu_ms_per_event": round(worker_cpu * 1000 / events, 2) if events else None,
        "bundled_listeners": args.bundled, "backlog_mode": args.backlog, "load_average": round(os.getloadavg()[0], 1),
    }
    print(f"   placed     {result['placed_per_second']:>7.1f} orders/s  ({result['orders']} orders in "
          f"{placed['seconds']} s, p95 {placed['p95_ms']} ms, {len(errors)} failed)")
    print(f"   delivered  {result['delivered_per_second_while_placing']:>7.1f} events/s while placing; "
          f"backlog when the last order was answered: {result['backlog_when_placing_ended']}")
    if caught_up:
        print(f"   delivered  {result['delivered_per_second']:>7.1f} events/s over the run ({events} events; caught "
              f"up {result['catch_up_seconds']} s after the last order)")
    print(f"   backlog after the run: {result['backlog_after']}   worker CPU {result['worker_cpu_ms_per_event']} ms "
          f"per event; load average {result['load_average']} on {os.cpu_count()} CPUs")
    # Live, the worker can only deliver what has been placed: its rate over the run is the placing rate minus
    # the last events' lag, so it can never exceed it. Live, it keeps up when the backlog left by the last
    # order is at most one batch (100) and it catches up within a second; --backlog measures its capacity.
    if not args.backlog:
        print(f"   most events waiting at once while placing: {result['max_backlog_while_placing']}")
    kept_pace = (not args.backlog and result["backlog_when_placing_ended"] <= 100
                 and result["catch_up_seconds"] is not None and result["catch_up_seconds"] <= 1.0)
    ok = caught_up and (result["delivered_per_second"] >= result["placed_per_second"] or kept_pace)
    print(f"   goal delivered/s >= placed/s (live: at most one batch left, caught up within 1 s): "
          f"{'met' if ok else 'NOT met'}", flush=True)
    if errors:
        print(f"   e.g. {errors[0]}", file=sys.stderr)
    _cleanup_all()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--bundled", action="store_true", help="keep the bundled stage-hook plugins enabled")
    parser.add_argument("--backlog", action="store_true",
                        help="no worker while placing; then one worker delivers the backlog (its top speed)")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds to wait for the worker after")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    print(f"== PostgreSQL + Redis: {args.orders} orders, {args.threads} client threads, one hookshop worker",
          flush=True)
    try:
        result = bench(args)
    finally:
        _cleanup_all()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 1 if result["failed_requests"] or result["backlog_after"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
