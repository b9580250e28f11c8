"""Receiving serial units: one receipt of 10,000 (and 100,000) serials, the engine against raw SQL.

    python bench/receive_serials.py --db sqlite|postgresql|both --sizes 10000,100000

For each database and size it makes a fresh database (a temporary SQLite file, or a private PostgreSQL
schema created here and dropped at the end), migrates it, creates one serial-tracked product and then

1. **engine, scanned list**: ``stock.receive_stock(sku, n, serials=[...])`` in-process (the service the
   REST API and ``hookshop stock receive`` call): the product lock, the duplicate check, the ledger row,
   the Core bulk insert of the units and one INSERT ... SELECT of their ``received`` events;
2. **engine, generated**: the same with ``generate=True`` (pattern, counter, check characters);
3. **the limit**: the same rows written with the bare driver (stdlib ``sqlite3`` / ``psycopg``
   ``executemany``): one ledger row, the units, their events, in one transaction, no checks;

and prints wall time, peak Python memory (tracemalloc, in a second receipt of the same size: tracing slows
Python down, so it is not timed) and the engine/limit ratio.
Nothing here is a test: the numbers depend on the machine. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _app(url: str, folder: str):
    from engine import schema
    from engine.app import create_app

    app = create_app({"DATABASE_URL": url, "INSTANCE": folder, "REDIS_URL": None, "TESTING": True})
    schema.upgrade(app)
    return app


def _product(app, sku: str) -> int:
    from engine.services import catalog

    with app.app_context():
        return catalog.create_product({"sku": sku, "name": sku, "price": 100, "currency": "EUR",
                                       "track_serials": True}).id


def _engine_run(app, sku: str, n: int, generate: bool, trace: bool) -> float:
    """Seconds for one receipt of ``n`` units; with ``trace`` the peak of traced Python memory in bytes
    instead (tracemalloc slows Python down several times, so time and memory are separate runs)."""
    from engine.db import db
    from engine.services import stock

    serials = None if generate else [f"{sku}-{i:08d}" for i in range(n)]
    with app.app_context():
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        stock.receive_stock(sku, n, serials=serials, generate=generate, reference="bench")
        elapsed = time.perf_counter() - started
        if trace:
            elapsed = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        db.session.remove()
    return elapsed


def _limit_rows(product_id: int, n: int):
    now = datetime.now(UTC)
    serials = [f"RAW-{product_id}-{i:08d}" for i in range(n)]
    return now, serials


def _limit_sqlite(path: str, product_id: int, location_id: int, n: int) -> float:
    now, serials = _limit_rows(product_id, n)
    conn = sqlite3.connect(path, isolation_level=None)
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO stock_movements (product_id, location_id, quantity, kind, created_at) "
                 "VALUES (?, ?, ?, 'receipt', ?)", (product_id, location_id, n, now.isoformat()))
    conn.executemany("INSERT INTO serial_units (product_id, location_id, serial, status, created_at) "
                     "VALUES (?, ?, ?, 'in_stock', ?)", [(product_id, location_id, s, now.isoformat()) for s in serials])
    conn.execute("INSERT INTO serial_events (unit_id, at, kind, status, location_id) SELECT id, ?, 'received', "
                 "'in_stock', location_id FROM serial_units WHERE product_id = ?", (now.isoformat(), product_id))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _limit_pg(url: str, product_id: int, location_id: int, n: int) -> float:
    import psycopg

    now, serials = _limit_rows(product_id, n)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO stock_movements (product_id, location_id, quantity, kind, created_at) "
                        "VALUES (%s, %s, %s, 'receipt', %s)", (product_id, location_id, n, now))
            cur.executemany("INSERT INTO serial_units (product_id, location_id, serial, status, created_at) "
                            "VALUES (%s, %s, %s, 'in_stock', %s)", [(product_id, location_id, s, now) for s in serials])
            cur.execute("INSERT INTO serial_events (unit_id, at, kind, status, location_id) SELECT id, %s, "
                        "'received', 'in_stock', location_id FROM serial_units WHERE product_id = %s",
                        (now, product_id))
        conn.commit()
        return time.perf_counter() - started


def run(database: str, sizes: list[int]) -> None:
    from sqlalchemy import create_engine, text

    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            schema_name = None
            if database == "sqlite":
                path = os.path.join(folder, "bench.sqlite")
                url = f"sqlite:///{path}"
            else:
                schema_name = f"bench_serials_{uuid.uuid4().hex[:8]}"
                admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"),
                                      isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
                url = f"{PG_URL}?options=-csearch_path%3D{schema_name}"
            try:
                app = _app(url, os.path.join(folder, "instance"))
                for sku in ("LIST", "LIST-M", "GEN", "GEN-M"):
                    _product(app, sku)
                raw_id = _product(app, "RAW")
                listed = _engine_run(app, "LIST", n, generate=False, trace=False)
                listed_peak = _engine_run(app, "LIST-M", n, generate=False, trace=True)
                generated = _engine_run(app, "GEN", n, generate=True, trace=False)
                generated_peak = _engine_run(app, "GEN-M", n, generate=True, trace=True)
                with app.app_context():
                    from engine.db import db
                    from engine.services import stock

                    location_id = stock.default_location().id
                    db.session.commit()
                    db.engine.dispose()
                limit = _limit_sqlite(path, raw_id, location_id, n) if database == "sqlite" else \
                    _limit_pg(f"{PG_URL}?options=-csearch_path%3D{schema_name}", raw_id, location_id, n)
                print(f"{database:10} n={n:>7,}  scanned list {listed:6.2f} s ({listed_peak / 2**20:6.1f} MiB peak)  "
                      f"generated {generated:6.2f} s ({generated_peak / 2**20:6.1f} MiB)  raw SQL {limit:6.2f} s  "
                      f"ratio {listed / limit:4.1f}x / {generated / limit:4.1f}x", flush=True)
            finally:
                if schema_name:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
                    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000", help="comma separated receipt sizes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for database in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        run(database, sizes)


if __name__ == "__main__":
    main()
