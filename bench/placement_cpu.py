"""CPU time per placement, in-process: the steadiest figure for comparing two versions of the request.

    python bench/placement_cpu.py --db sqlite|postgresql|both --orders 400 [--runs 3] [--pg-driver psycopg2]

Places ``--orders`` orders (the workload of place_orders.py: 1-3 lines, about half from returning
customers, each with an Idempotency-Key) through Flask's test client in one thread, after 50 warm-up orders,
and prints the process's CPU time and the wall time per placement (the median of ``--runs`` runs). The
stage-hook plugins (notify_email, accounting_export, channel_webhook, crm_salesforce) are disabled, so the
embedded delivery thread has nothing to run and the figure is the request's own: routing, validation,
the placement's statements, the commit, the answer. No HTTP server, no client threads, no other process:
the figure moves little with the machine's load, unlike place_orders.py's throughput. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from place_orders import PG_URL, Database, _cleanup_all, in_process_shop, order_bodies  # noqa: E402

STAGE_HOOK_PLUGINS = ["notify_email", "accounting_export", "channel_webhook", "crm_salesforce"]
WARMUP = 50


def run(kind: str, orders: int, pg_url: str, pg_driver: str = "psycopg") -> tuple[float, float]:
    """(CPU ms, wall ms) per placement for one fresh database."""
    from engine.db import db

    try:
        app, client, headers = in_process_shop(Database(kind, pg_url, pg_driver=pg_driver),
                                                PLUGINS_DISABLED=STAGE_HOOK_PLUGINS)
        bodies = [b for mine in order_bodies(orders + WARMUP, 1) for b in mine]

        def place(body):
            answer = client.post("/api/v1/orders", json=body,
                                 headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
            if answer.status_code != 201:
                raise SystemExit(f"placement failed: {answer.status_code} {answer.get_json()}")

        for body in bodies[:WARMUP]:
            place(body)
        cpu, wall = time.process_time(), time.perf_counter()
        for body in bodies[WARMUP:]:
            place(body)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return cpu * 1000 / orders, wall * 1000 / orders
    finally:
        _cleanup_all()  # the run's folder and PostgreSQL schema


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3, help="runs per database, each on a fresh one (the median)")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--pg-driver", choices=["psycopg", "psycopg2"], default="psycopg",
                        help="the engine's PostgreSQL driver (psycopg2: DATABASE_URL=postgresql+psycopg2://...)")
    args = parser.parse_args(argv)
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        figures = [run(kind, args.orders, args.pg_url, args.pg_driver) for _ in range(args.runs)]
        cpu = statistics.median(f[0] for f in figures)
        wall = statistics.median(f[1] for f in figures)
        label = f"{kind} ({args.pg_driver})" if kind == "postgresql" else kind
        print(f"{label:<10} {cpu:6.2f} ms CPU, {wall:6.2f} ms wall per placement  (median of {args.runs} runs of "
              f"{args.orders}; each run's CPU: {', '.join(f'{f[0]:.2f}' for f in figures)}; "
              f"load average {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
