"""GET /orders latency from 1k to 1M orders: every filter should cost the same at any table size.

    python bench/list_orders.py                                   # both databases, 1k, 10k, 100k, 1M orders
    python bench/list_orders.py --max-orders 100000               # the quick run: up to 100k
    python bench/list_orders.py --db sqlite --sizes 1000 50000 --requests 20 --explain

For each database it

1. creates a fresh database with hookshop's schema (a temporary SQLite file; a private
   PostgreSQL schema, created here and dropped at the end) and an API key;
2. fills it, size after size (the next size adds the missing orders, newer ids), with bulk Core
   inserts (``executemany`` in batches of ``--batch`` rows, explicit ids, no ORM, no placement
   logic): orders, their 1-3 lines and their flags, with a spread of statuses, channels, customers
   (about 4 orders each, and one wholesale customer with 5 % of all orders) and flags (``repeat``
   55 %, ``coupon:welcome`` 8 %, ``gift`` 6 %, ``vip`` 3 %, ``b2b`` 2 %, ``replacement`` 0.5 %);
   on PostgreSQL then ``VACUUM ANALYZE`` (what autovacuum does to a table that grew);
3. at each size, sends ``--requests`` requests per case (after 3 warm-up requests) through Flask's
   test client, in this process, one thread: ``GET /api/v1/orders`` with no filter, each filter,
   combinations and deep cursor pages (the cursor 10 % from the oldest order), 50 orders a page
   with their lines, payments, shipments and flags, round robin over the cases; it records p50/p95
   latency, the p50 time inside ``list_orders`` (database + ORM, without the JSON answer) and the
   SQL statements per request (the hardware-independent figure: it must not grow);
4. prints a table per database and size, and the growth ratio largest/smallest size per case.

``--explain`` prints the query plans of the flag and combination queries at the largest size.
Nothing here is a test: numbers depend on the machine. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SIZES = [1_000, 10_000, 100_000, 1_000_000]
PRODUCTS = 40
WHOLESALE = 1  # the customer id of the one big customer

STATUSES = [("completed", 55), ("delivered", 8), ("shipped", 10), ("packed", 1), ("confirmed", 1), ("picked", 1),
            ("picking", 0.5), ("paid", 8), ("placed", 6), ("on_hold", 1.5), ("cancelled", 8)]
CHANNELS = [("api", 30), ("shopify", 40), ("woocommerce", 20), ("admin", 10)]
FLAGS = [("repeat", 0.55), ("coupon:welcome", 0.08), ("gift", 0.06), ("vip", 0.03), ("b2b", 0.02),
         ("replacement", 0.005)]
CITIES = ["Berlin", "Lyon", "Porto", "Gent", "Turku", "Graz", "Bergen"]


def cases(size: int) -> list[tuple[str, str]]:
    deep = max(2, size // 10)
    return [
        ("no filter", ""),
        ("status=paid", "status=paid"),
        ("channel=woocommerce", "channel=woocommerce"),
        ("customer (wholesale)", f"customer={WHOLESALE}"),
        ("flag=gift", "flag=gift"),
        ("flag=vip", "flag=vip"),
        ("flag=gift&status=completed", "flag=gift&status=completed"),
        ("status+channel+flag", "status=completed&channel=shopify&flag=repeat"),
        ("deep page, no filter", f"cursor={deep}"),
        ("deep page, flag=gift", f"flag=gift&cursor={deep}"),
    ]


# ---------------------------------------------------------------- the data

class Filler:
    """Adds orders with ids first..last (and the customers they need) through bulk Core inserts."""

    def __init__(self, app, batch: int, seed: int = 11):
        from engine.models import Customer, Order, OrderFlag, OrderLine, Product

        self.app, self.batch = app, batch
        self.rng = random.Random(seed)
        self.tables = {m.__tablename__: m.__table__ for m in (Customer, Order, OrderFlag, OrderLine, Product)}
        self.orders = 0
        self.customers = 0
        self.start = datetime(2024, 1, 1, tzinfo=UTC)
        self.status_names, self.status_weights = zip(*STATUSES, strict=True)
        self.channel_names, self.channel_weights = zip(*CHANNELS, strict=True)
        self.prices = [990 + 250 * p for p in range(PRODUCTS)]
        with app.app_context():
            from engine.db import db

            with db.engine.begin() as conn:
                conn.execute(self.tables["products"].insert(), [
                    {"id": p + 1, "sku": f"BENCH-{p}", "name": f"Bench product {p}", "price": self.prices[p],
                     "currency": "EUR", "created_at": self.start} for p in range(PRODUCTS)])

    def _ensure_customers(self, conn, upto: int) -> None:
        table = self.tables["customers"]
        while self.customers < upto:
            ids = range(self.customers + 1, min(upto, self.customers + self.batch) + 1)
            conn.execute(table.insert(), [
                {"id": c, "email": f"c{c}@bench.example", "name": f"Customer {c}", "phone": "+49 30 1234567",
                 "addresses": [], "preferences": {}, "order_count": 0, "total_spent": 0, "currency": "EUR",
                 "vip": False, "created_at": self.start, "updated_at": self.start} for c in ids])
            self.customers = ids[-1]

    def fill(self, size: int) -> float:
        """Grow to ``size`` orders; returns the seconds it took."""
        from engine.db import db

        t0 = time.perf_counter()
        rng = self.rng
        with self.app.app_context(), db.engine.begin() as conn:
            self._ensure_customers(conn, max(10, size // 4))
            while self.orders < size:
                first, last = self.orders + 1, min(size, self.orders + self.batch)
                orders, lines, flags = [], [], []
                statuses = rng.choices(self.status_names, self.status_weights, k=last - first + 1)
                channels = rng.choices(self.channel_names, self.channel_weights, k=last - first + 1)
                for k, oid in enumerate(range(first, last + 1)):
                    customer = WHOLESALE if rng.random() < 0.05 else rng.randint(2, self.customers)
                    subtotal = 0
                    for p in rng.sample(range(PRODUCTS), rng.randint(1, 3)):
                        qty = rng.randint(1, 3)
                        subtotal += qty * self.prices[p]
                        lines.append({"order_id": oid, "product_id": p + 1, "sku": f"BENCH-{p}",
                                      "name": f"Bench product {p}", "quantity": qty, "unit_price": self.prices[p],
                                      "backordered": 0, "picked_quantity": 0, "returned_quantity": 0,
                                      "serials": []})
                    position = 0
                    for flag, share in FLAGS:
                        if rng.random() < share:
                            flags.append({"order_id": oid, "flag": flag, "position": position})
                            position += 1
                    status = statuses[k]
                    paid = subtotal if status not in ("placed", "on_hold", "cancelled") else 0
                    at = self.start + timedelta(minutes=oid)
                    orders.append({
                        "id": oid, "status": status, "payment_status": "paid" if paid else "unpaid",
                        "payment_provider": "manual", "channel": channels[k],
                        "external_id": None if channels[k] in ("api", "admin") else str(oid),
                        "customer_id": customer, "email": f"c{customer}@bench.example",
                        "customer_name": f"Customer {customer}", "phone": "+49 30 1234567",
                        "shipping_address": {"line1": f"{customer} Main Street", "city": CITIES[customer % 7],
                                             "postal_code": f"{10000 + customer % 90000}", "country": "DE"},
                        "currency": "EUR", "subtotal": subtotal, "discount_total": 0, "shipping_total": 0,
                        "tax_total": 0, "total": subtotal, "paid_total": paid, "refunded_total": 0,
                        "gift": False, "created_at": at, "updated_at": at})
                conn.execute(self.tables["orders"].insert(), orders)
                conn.execute(self.tables["order_lines"].insert(), lines)
                if flags:
                    conn.execute(self.tables["order_flags"].insert(), flags)
                self.orders = last
            if conn.dialect.name == "postgresql":
                for table in ("orders", "customers", "products", "order_lines"):
                    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT max(id) FROM {table}))")
        if db_kind(self.app) == "postgresql":
            with self.app.app_context(), db.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM ANALYZE orders, order_lines, order_flags, customers")
        return time.perf_counter() - t0


def db_kind(app) -> str:
    return "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"


# ---------------------------------------------------------------- one database

class Database:
    def __init__(self, kind: str, pg_url: str):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix=f"hookshop-bench-list-{kind}-")
        self.config = {"INSTANCE": self.tmp, "REDIS_URL": None}
        if kind == "postgresql":
            import psycopg

            self.schema = f"bench_list_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.base_url = pg_url
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            sep = "&" if "?" in pg_url else "?"
            self.config["DATABASE_URL"] = f"{pg_url}{sep}options=-csearch_path%3D{self.schema}"
        else:
            self.config["DATABASE_URL"] = f"sqlite:///{self.tmp}/hookshop.sqlite"

    def close(self) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.base_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        shutil.rmtree(self.tmp, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(client, headers, queries: list[tuple[str, str]], requests: int, probe: dict) -> dict:
    """Round robin over the cases (one request of each per round, so a burst of load on the machine
    hits every case alike): latency, time inside ``list_orders`` (database + ORM, no JSON), statements."""
    urls = {label: "/api/v1/orders" + (f"?{query}" if query else "") for label, query in queries}
    samples = {label: {"latency": [], "service": [], "statements": 0, "items": 0} for label in urls}
    for round_ in range(3 + requests):
        for label, url in urls.items():
            probe["statements"], probe["service"] = 0, 0.0
            t0 = time.perf_counter()
            resp = client.get(url, headers=headers)
            elapsed = time.perf_counter() - t0
            if resp.status_code != 200:
                raise SystemExit(f"GET {url}: {resp.status_code} {resp.get_json()}")
            if round_ < 3:
                continue  # warm-up
            sample = samples[label]
            sample["latency"].append(elapsed)
            sample["service"].append(probe["service"])
            sample["statements"] += probe["statements"]
            sample["items"] = len(resp.get_json()["items"])
    return {label: {"p50_ms": round(percentile(s["latency"], 50) * 1000, 1),
                    "p95_ms": round(percentile(s["latency"], 95) * 1000, 1),
                    "mean_ms": round(statistics.fmean(s["latency"]) * 1000, 1),
                    "service_p50_ms": round(percentile(s["service"], 50) * 1000, 1),
                    "items": s["items"], "statements": round(s["statements"] / requests, 1)}
            for label, s in samples.items()}


def explain(app, size: int) -> None:
    from sqlalchemy import text

    from engine.db import db
    from engine.services.order_list import list_query

    deep = max(2, size // 10)
    with app.app_context():
        bind = db.session.get_bind()
        for label, filters, cursor in (("flag=gift", {"flag": "gift"}, None),
                                       ("flag=gift&status=completed", {"flag": "gift", "status": "completed"}, None),
                                       ("status+channel+flag", {"status": "completed", "channel": "shopify",
                                                                "flag": "repeat"}, None),
                                       ("channel=woocommerce", {"channel": "woocommerce"}, None),
                                       ("deep page, flag=gift", {"flag": "gift"}, deep)):
            stmt, key = list_query(**filters)
            if cursor:
                stmt = stmt.where(key < cursor)
            sql = str(stmt.limit(51).compile(bind, compile_kwargs={"literal_binds": True}))
            if bind.dialect.name == "sqlite":
                rows = db.session.execute(text("EXPLAIN QUERY PLAN " + sql)).all()
                plan = [f"{r[3]}" for r in rows]
            else:
                rows = db.session.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + sql)).all()
                plan = [r[0] for r in rows]
            print(f"   plan of {label}:")
            for line in plan:
                print(f"      {line}")
        db.session.rollback()


def bench(kind: str, args) -> dict:
    from sqlalchemy import event

    from engine.app import create_app, init_schema
    from engine.db import db
    from engine.services import auth
    from engine.services import orders as order_service

    print(f"\n== {kind}", flush=True)
    list_orders = order_service.list_orders
    database = Database(kind, args.pg_url)
    try:
        app = create_app(dict(database.config))
        init_schema(app)
        with app.app_context():
            _, key = auth.create_api_key("bench", ["read"])
            engine = db.engine
        probe = {"statements": 0, "service": 0.0}

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_a, **_k):
            probe["statements"] += 1

        def timed_list_orders(**kwargs):
            t0 = time.perf_counter()
            try:
                return list_orders(**kwargs)
            finally:
                probe["service"] += time.perf_counter() - t0

        order_service.list_orders = timed_list_orders  # the API calls it through the module

        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        filler = Filler(app, args.batch)
        results = {}
        for size in args.sizes:
            seconds = filler.fill(size)
            print(f"   {size:>9,} orders (filled in {seconds:.1f} s)", flush=True)
            rows = measure(client, headers, cases(size), args.requests, probe)
            for label, r in rows.items():
                print(f"      {label:<28} p50 {r['p50_ms']:>6.1f} ms   p95 {r['p95_ms']:>6.1f} ms   "
                      f"list_orders p50 {r['service_p50_ms']:>5.1f} ms   {r['items']:>3} orders, "
                      f"{r['statements']:g} statements", flush=True)
            results[size] = rows
        if args.explain:
            explain(app, args.sizes[-1])
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        return results
    finally:
        order_service.list_orders = list_orders
        database.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="order counts, ascending")
    parser.add_argument("--max-orders", type=int, help="leave out the sizes above this (e.g. 100000)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests per case and size")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per executemany")
    parser.add_argument("--explain", action="store_true", help="print query plans at the largest size")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (a private schema is created and dropped)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.sizes = sorted(s for s in args.sizes if args.max_orders is None or s <= args.max_orders)
    if not args.sizes:
        parser.error("no size left under --max-orders")
    logging.getLogger("hookshop").setLevel(logging.ERROR)  # the plugins' start-up notes
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"hookshop GET /orders benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.1f}; sizes {args.sizes}, "
          f"{args.requests} requests per case")
    results = {}
    try:
        for kind in kinds:
            results[kind] = bench(kind, args)
    except KeyboardInterrupt:
        print("\ninterrupted: temporary database removed", file=sys.stderr)
        return 130
    smallest, largest = args.sizes[0], args.sizes[-1]
    for kind, by_size in results.items():
        for key, what in (("p50_ms", "GET /orders p50"), ("service_p50_ms", "list_orders p50 (database + ORM)")):
            print(f"\n{kind}: {what} in ms by size (growth = {largest:,} / {smallest:,})")
            print(f"   {'case':<28}" + "".join(f"{s:>11,}" for s in args.sizes) + f"{'growth':>9}")
            for label, _ in cases(largest):
                values = [by_size[s][label][key] for s in args.sizes]
                growth = values[-1] / values[0] if values[0] else float("nan")
                print(f"   {label:<28}" + "".join(f"{v:>11.1f}" for v in values) + f"{growth:>8.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
