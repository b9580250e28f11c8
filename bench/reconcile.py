"""Reconciliation (``hookshop stock reconcile``): time and peak memory for 10,000 and 100,000 products.

    python bench/reconcile.py                               # SQLite: 10k and 100k products
    python bench/reconcile.py --db both                     # SQLite and PostgreSQL
    python bench/reconcile.py --sizes 10000 --db postgresql --json results.json

For each size it

1. makes a fresh database (a temporary SQLite file; a private PostgreSQL schema, dropped after) with
   hookshop's schema, and bulk-inserts with Core ``executemany``: the products (every 10th serial-tracked),
   a stock level at MAIN for each (every 5th one at SIDE too), three movements per level (receipt +10,
   shipment -2, adjustment -1: on hand 7), seven units in stock and two shipped per tracked level, and one
   open reservation on every other level (reserved 1). 1% of the levels are then corrupted (on hand + 1),
   so the report has rows to write;
2. runs the reconciliation the command runs (``reconciliation.walk`` over one snapshot, the CSV written to
   a temporary file), once untraced for the time and once under ``tracemalloc`` for the peak Python heap;
3. runs the same queries as raw SQL on the driver's cursor (fetching every row, comparing nothing): the
   limit the engine's Python work is measured against (ratio engine/raw);
4. prints seconds, products/s, peak heap and the growth from the smallest to the largest size.

Nothing here is a test: the numbers depend on the machine. See docs/performance.md (## Reconciliation).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 20_000


def _batches(rows, size=BATCH):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(app, products: int) -> dict:
    """Bulk-insert the shop; returns the row counts."""
    from bulk_orders import Spec, insert_orders
    from sqlalchemy import insert, text

    from engine.db import db, utcnow
    from engine.models import Location, Product, Reservation, SerialUnit, StockLevel, StockMovement

    (order_id,), _ = insert_orders(app, [Spec()], customers=1)
    with app.app_context():
        session = db.session
        line_id = session.execute(text("SELECT id FROM order_lines WHERE order_id = :o"), {"o": order_id}).scalar()
        first = session.execute(text("SELECT coalesce(max(id), 0) FROM products")).scalar() + 1
        now = utcnow()
        session.execute(insert(Location.__table__), [{"id": 1001, "code": "MAIN", "name": "Main"},
                                           {"id": 1002, "code": "SIDE", "name": "Side"}])
        ids = range(first, first + products)
        for batch in _batches({"id": pid, "sku": f"B-{pid}", "name": f"Bench {pid}", "price": 100, "currency": "EUR",
                               "track_serials": pid % 10 == 0, "allow_backorder": False, "reorder_point": 0,
                               "reorder_quantity": 0, "weight_grams": 0, "created_at": now} for pid in ids):
            session.execute(insert(Product.__table__), batch)
        places = [(pid, loc) for pid in ids for loc in ((1001, 1002) if pid % 5 == 0 else (1001,))]
        for batch in _batches({"product_id": p, "location_id": loc, "on_hand": 7, "reserved": (p + loc) % 2}
                              for p, loc in places):
            session.execute(insert(StockLevel.__table__), batch)
        for batch in _batches({"product_id": p, "location_id": loc, "quantity": q, "kind": kind, "created_at": now,
                               "reason": "damage" if kind == "adjustment" else None,
                               "staff": "bench" if kind == "adjustment" else None}
                              for p, loc in places
                              for q, kind in ((10, "receipt"), (-2, "shipment"), (-1, "adjustment"))):
            session.execute(insert(StockMovement.__table__), batch)
        for batch in _batches({"product_id": p, "location_id": loc, "serial": f"S{p}-{loc}-{n}",
                               "status": "in_stock" if n < 7 else "shipped", "created_at": now}
                              for p, loc in places if p % 10 == 0 for n in range(9)):
            session.execute(insert(SerialUnit.__table__), batch)
        for batch in _batches({"order_id": order_id, "line_id": line_id, "product_id": p, "location_id": loc,
                               "quantity": 1, "status": "open", "created_at": now}
                              for p, loc in places if (p + loc) % 2):
            session.execute(insert(Reservation.__table__), batch)
        session.execute(text("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE id % 100 = 0"))
        session.commit()
        if db.engine.dialect.name == "postgresql":
            for table in ("products", "stock_levels", "stock_movements", "serial_units", "reservations"):
                session.execute(text(f"ANALYZE {table}"))
        else:
            session.execute(text("ANALYZE"))
        session.commit()
    return {"products": products, "levels": len(places), "movements": 3 * len(places)}


def engine_run(app, traced: bool) -> dict:
    from engine.services import reconciliation

    with app.app_context(), tempfile.TemporaryFile("w+") as out:
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        totals = reconciliation.Totals()
        with reconciliation.snapshot() as conn:
            writer = csv.DictWriter(out, fieldnames=reconciliation.FIELDS)
            writer.writeheader()
            writer.writerows(reconciliation.walk(conn, totals=totals))
        seconds = time.perf_counter() - started
        peak = None
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return {"seconds": seconds, "peak_bytes": peak, "differences": totals.differences}


RAW = [
    "SELECT id, sku, track_serials FROM products WHERE id > {last} ORDER BY id LIMIT {chunk}",
    "SELECT product_id, location_id, on_hand, reserved FROM stock_levels WHERE product_id > {low} AND product_id <= {high}",
    "SELECT product_id, location_id, sum(quantity) FROM stock_movements WHERE product_id > {low} AND product_id <= "
    "{high} GROUP BY product_id, location_id",
    "SELECT product_id, location_id, count(id) FROM serial_units WHERE product_id > {low} AND product_id <= {high} "
    "AND status IN ('in_stock', 'reserved', 'picked', 'quarantined') GROUP BY product_id, location_id",
    "SELECT product_id, location_id, sum(quantity) FROM reservations WHERE product_id > {low} AND product_id <= "
    "{high} AND status = 'open' GROUP BY product_id, location_id",
]


def raw_run(app, chunk: int = 2000) -> float:
    """The reconciliation's queries alone, on the driver's cursor."""
    from engine.db import db

    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            started = time.perf_counter()
            last = 0
            while True:
                cur.execute(RAW[0].format(last=last, chunk=chunk))
                page = cur.fetchall()
                if not page:
                    break
                low, high = page[0][0] - 1, page[-1][0]
                for statement in RAW[1:]:
                    cur.execute(statement.format(low=low, high=high))
                    cur.fetchall()
                last = high
            seconds = time.perf_counter() - started
            raw.rollback()
        finally:
            raw.close()
    return seconds


def _app(url: str):
    from engine import schema
    from engine.app import create_app

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "INSTANCE": tempfile.mkdtemp(prefix="bench-rec-")})
    schema.upgrade(app)
    return app


def measure(db_name: str, size: int) -> dict:
    from sqlalchemy import create_engine, text

    from engine.db import db

    cleanup = None
    if db_name == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-rec-")
        url = f"sqlite:///{folder}/bench.sqlite"
    else:
        name = f"bench_rec_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = PG_URL.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{name}"

        def cleanup():
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
            admin.dispose()
    try:
        app = _app(url)
        started = time.perf_counter()
        rows = seed(app, size)
        seeded = time.perf_counter() - started
        timed = engine_run(app, traced=False)
        traced = engine_run(app, traced=True)
        raw = raw_run(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        if cleanup:
            cleanup()
    return {"db": db_name, **rows, "seed_seconds": round(seeded, 1), "seconds": round(timed["seconds"], 2),
            "products_per_second": round(size / timed["seconds"]), "peak_mib": round(traced["peak_bytes"] / 2**20, 2),
            "raw_seconds": round(raw, 2), "ratio_engine_raw": round(timed["seconds"] / raw, 2),
            "differences": timed["differences"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    results = []
    for db_name in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        for size in sorted(args.sizes):
            result = measure(db_name, size)
            results.append(result)
            print(json.dumps(result), flush=True)
        mine = [r for r in results if r["db"] == db_name]
        if len(mine) > 1:
            small, large = mine[0], mine[-1]
            print(f"[{db_name}] {small['products']} -> {large['products']} products: time x"
                  f"{large['seconds'] / small['seconds']:.1f}, peak heap x{large['peak_mib'] / small['peak_mib']:.2f}"
                  f" (products x{large['products'] / small['products']:.0f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
