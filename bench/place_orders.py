"""Order placement throughput: the engine over HTTP against the raw-SQL limit.

    python bench/place_orders.py --db sqlite|postgresql|both --orders 2000 --threads 8
    python bench/place_orders.py --db sqlite --profile --orders 500     # pyinstrument, in-process

For each database it

1. starts a real server process on loopback (``hookshop serve --threads 8``,
   waitress) on a fresh database: a temporary instance folder for SQLite, a
   private schema (created here, dropped at the end) for PostgreSQL;
2. runs ``hookshop init`` and ``hookshop create-api-key``, creates a few
   products and a lot of stock through the API;
3. places ``--orders`` orders through ``POST /api/v1/orders`` (with an
   Idempotency-Key, 1 to 3 lines each, returning customers mixed with new ones)
   from ``--threads`` client threads, one keep-alive ``http.client``
   connection each, and measures orders/s and the latency percentiles;
4. stops the server and runs **the limit**: the same database writes a
   placement makes, as raw SQL on the engine's own tables (select products,
   upsert the customer, lock + update the stock levels, insert the order, its
   flags, lines, reservations, timeline event, outbox row and idempotency record), one
   transaction per order (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR
   UPDATE`` on PostgreSQL), from the same number of threads, with the stdlib
   ``sqlite3`` driver and ``psycopg`` directly;
5. prints both and the ratio engine/limit.

``--pg-driver psycopg2`` runs the engine on psycopg2 (``postgresql+psycopg2://``); the limit stays on psycopg 3.

``--redis URL`` is the production mode: the server gets ``REDIS_URL`` (a private rq queue) and one
``hookshop worker`` runs the stage hooks; the worker's CPU per order and the backlog are printed too.

``--profile`` instead runs the placements in this process through Flask's test
client under pyinstrument (one thread), prints the heaviest frames and the SQL
statements per placement, and writes an HTML report.

Nothing here is a test: numbers depend on the machine. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PRODUCTS = 5
STOCK_PER_PRODUCT = 1_000_000
CITIES = ["Berlin", "Lyon", "Porto", "Gent", "Turku"]

_cleanups: list = []


def _cleanup_all():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:  # cleanup must go on
            print(f"cleanup: {exc}", file=sys.stderr)


atexit.register(_cleanup_all)


# ---------------------------------------------------------------- workload

def order_bodies(count: int, threads: int, seed: int = 7) -> list[list[dict]]:
    """Per thread, the bodies it will post: 1-3 lines, quantities 1-3; about half
    the orders come from a returning customer (the pools are per thread so two
    threads never race to create the same new customer)."""
    rng = random.Random(seed)
    per_thread: list[list[dict]] = [[] for _ in range(threads)]
    for i in range(count):
        t = i % threads
        n = len(per_thread[t])
        who = n if rng.random() < 0.5 else rng.randrange(max(1, n // 4 + 1))
        skus = rng.sample([f"BENCH-{p}" for p in range(PRODUCTS)], rng.randint(1, 3))
        per_thread[t].append({
            "customer": {"email": f"t{t}-c{who}@bench.example", "name": f"Customer {t}-{who}",
                         "phone": "+49 30 1234567",
                         "shipping_address": {"line1": f"{who} Main Street", "city": CITIES[who % len(CITIES)],
                                              "postal_code": f"{10000 + who}", "country": "DE"}},
            "lines": [{"sku": s, "quantity": rng.randint(1, 3)} for s in skus],
        })
    return per_thread


def summarize(latencies: list[float], wall: float, ok: int) -> dict:
    lat = sorted(latencies)
    pct = (lambda p: lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000) if lat else (lambda p: 0.0)
    return {"orders": ok, "seconds": round(wall, 2), "per_second": round(ok / wall, 1) if wall else 0.0,
            "p50_ms": round(pct(50), 1), "p95_ms": round(pct(95), 1), "p99_ms": round(pct(99), 1),
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else 0.0}


# ---------------------------------------------------------------- databases

class Database:
    """Where one run's data lives, and the environment that points the engine at it."""

    def __init__(self, kind: str, pg_url: str, redis_url: str | None = None, pg_driver: str = "psycopg"):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix=f"hookshop-bench-{kind}-")
        _cleanups.append(lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "REDIS_URL", "HOOKSHOP_CONFIG", "HOOKSHOP_INSTANCE")}
        self.env["HOOKSHOP_INSTANCE"] = self.tmp
        self.env["PYTHONUNBUFFERED"] = "1"
        if redis_url:  # the production mode: stage hooks on a private rq queue, run by `hookshop worker`
            self.env["REDIS_URL"] = redis_url
            self.env["HOOKSHOP_QUEUE"] = f"bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        if kind == "postgresql":
            import psycopg

            self.schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.base_url = pg_url
            sep = "&" if "?" in pg_url else "?"
            self.url = f"{pg_url}{sep}options=-csearch_path%3D{self.schema}"
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            _cleanups.append(self.drop)
            # the engine's driver (--pg-driver): a plain postgresql:// URL picks psycopg 3; the limit's raw
            # SQL always runs on psycopg 3, so that the ratios of both drivers share one denominator
            self.engine_url = self.url if pg_driver == "psycopg" else self.url.replace(
                "postgresql://", f"postgresql+{pg_driver}://", 1)
            self.env["DATABASE_URL"] = self.engine_url
        else:
            self.path = os.path.join(self.tmp, "hookshop.sqlite")

    def drop(self):
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def connect(self):
        """A raw DB-API connection configured like the engine's."""
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(self.url)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn


# ---------------------------------------------------------------- the server

def hookshop_command() -> list[str]:
    script = Path(sys.executable).with_name("hookshop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]


def run_cli(db: Database, *args: str) -> str:
    result = subprocess.run([*hookshop_command(), *args], env=db.env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"hookshop {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Process:
    """A ``hookshop`` subprocess of the benchmark, logging to a file in the run's folder, stopped with SIGTERM
    (a warm shutdown) and killed after ``stop_timeout`` seconds."""

    stop_timeout = 10

    def _start(self, db: Database, name: str, args: list[str]) -> None:
        self.log_path = os.path.join(db.tmp, f"{name}.log")
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*hookshop_command(), *args], env=db.env, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _cleanups.append(self.stop)

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process and its children (``--servers``: the supervisor's
        workers); Linux /proc, 0.0 elsewhere."""
        return process_cpu_seconds(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        try:
            return "".join(open(self.log_path).readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self.log.closed:
            self.log.close()


class Server(_Process):
    def __init__(self, db: Database, threads: int, processes: int = 1):
        self.port = free_port()
        workers = ["--workers", str(processes)] if processes > 1 else []
        self._start(db, "server", ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads",
                                   str(threads), *workers])
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer within 60 s:\n{self.tail()}")
            time.sleep(0.1)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of process ``pid`` and its children; Linux /proc, 0.0 elsewhere."""
    total = 0
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent
                total += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")


class Worker(_Process):
    """``hookshop worker`` (with its sweeper) on the run's rq queue: the production mode's stage hooks."""

    stop_timeout = 30

    def __init__(self, db: Database):
        self._start(db, "worker", ["worker"])


def waiting_events(db: Database) -> int:
    """Stage-hook events not delivered yet (tasks of kind stage_hook, pending or running)."""
    conn = db.connect()
    try:
        return conn.execute("SELECT count(*) FROM retry_tasks WHERE kind = 'stage_hook' "
                            "AND status IN ('pending', 'running')").fetchone()[0]
    finally:
        conn.close()


def drain_events(db: Database, timeout: float = 300.0) -> tuple[float, int]:
    """Wait until the worker has delivered every event: (seconds waited, events left at the end)."""
    start = time.monotonic()
    left = waiting_events(db)
    while left and time.monotonic() - start < timeout:
        time.sleep(0.2)
        left = waiting_events(db)
    return time.monotonic() - start, left


class Client:
    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: dict, idempotency_key: str | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        data = json.dumps(body)
        for attempt in (1, 2):
            try:
                self.conn.request("POST", "/api/v1" + path, data, headers)
                response = self.conn.getresponse()
                payload = response.read()
                return response.status, json.loads(payload or b"{}")
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def setup_shop(db: Database, port: int) -> str:
    key = run_cli(db, "create-api-key", "--name", "bench", "--scopes", "read,write,admin").strip().splitlines()[-1]
    client = Client(port, key)
    for p in range(PRODUCTS):
        status, body = client.post("/products", {"sku": f"BENCH-{p}", "name": f"Bench product {p}",
                                                 "price": 990 + 500 * p, "currency": "EUR"})
        if status != 201:
            raise SystemExit(f"creating a product failed: {status} {body}")
        status, body = client.post("/stock/receipts", {"sku": f"BENCH-{p}", "quantity": STOCK_PER_PRODUCT})
        if status not in (200, 201):
            raise SystemExit(f"receiving stock failed: {status} {body}")
    client.conn.close()
    return key


def run_engine(port: int, key: str, bodies: list[list[dict]], warmup: int) -> tuple[dict, list[str]]:
    threads = len(bodies)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients = [Client(port, key) for _ in range(threads)]
    for i in range(warmup):  # connections open, caches warm, first customers exist
        client = clients[i % threads]
        client.post("/orders", {**bodies[i % threads][0], "customer": {
            **bodies[i % threads][0]["customer"], "email": f"warmup-{i}@bench.example"}}, str(uuid.uuid4()))
    barrier = threading.Barrier(threads + 1)

    def work(index: int):
        client, mine = clients[index], []
        barrier.wait()
        for body in bodies[index]:
            t0 = time.perf_counter()
            try:
                status, answer = client.post("/orders", body, str(uuid.uuid4()))
            except Exception as exc:
                status, answer = 0, {"message": repr(exc)}
            elapsed = time.perf_counter() - t0
            if status == 201:
                mine.append(elapsed)
            else:
                with lock:
                    errors.append(f"{status}: {answer.get('code')} {answer.get('message')}")
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    for client in clients:
        client.conn.close()
    return summarize(latencies, wall, len(latencies)), errors


# ---------------------------------------------------------------- the limit (raw SQL)

def _now_text(pg: bool):
    now = datetime.now(UTC)
    # SQLAlchemy stores SQLite datetimes as text without the zone (they are UTC)
    return now if pg else now.replace(tzinfo=None).isoformat(sep=" ")


def raw_place(conn, pg: bool, body: dict, api_key_id: int) -> None:
    """One placement's writes, as raw SQL, in one transaction: the rows ``place_order`` writes for the
    bench's orders (the same tables, columns and values), with the values computed in SQL
    where the engine computes them under the same locks."""
    p = "%s" if pg else "?"
    js = (lambda: "%s::jsonb") if pg else (lambda: "?")
    now = _now_text(pg)
    cur = conn.cursor()
    if not pg:
        cur.execute("BEGIN IMMEDIATE")
    try:
        skus = [ln["sku"] for ln in body["lines"]]
        marks = ", ".join([p] * len(skus))
        products = {row[1]: row for row in cur.execute(
            f"SELECT id, sku, name, price, currency, allow_backorder FROM products WHERE sku IN ({marks})", skus)}
        subtotal = sum(products[ln["sku"]][3] * ln["quantity"] for ln in body["lines"])
        ids = sorted({products[s][0] for s in skus})
        marks = ", ".join([p] * len(ids))
        # lock order: the stock levels first, then the customer (as place_order)
        levels = list(cur.execute(
            f"SELECT id, product_id, location_id, on_hand, reserved FROM stock_levels WHERE product_id IN ({marks}) "
            f"ORDER BY id" + (" FOR UPDATE" if pg else ""), ids))
        by_product = {row[1]: row for row in levels}
        need: dict[int, int] = {}
        for ln in body["lines"]:
            need[products[ln["sku"]][0]] = need.get(products[ln["sku"]][0], 0) + ln["quantity"]
        for pid, qty in need.items():
            level = by_product[pid]
            if level[3] - level[4] < qty:
                raise RuntimeError(f"insufficient stock for product {pid}")
        cust = body["customer"]
        address = json.dumps(cust["shipping_address"])
        # the customer's statistics: orders and amount spent per currency, first and last order
        if pg:
            spent = ("customers.spent_by_currency || jsonb_build_object('EUR', "
                     "coalesce((customers.spent_by_currency->>'EUR')::bigint, 0) + excluded.total_spent)")
            counted = ("customers.orders_by_currency || jsonb_build_object('EUR', "
                       "coalesce((customers.orders_by_currency->>'EUR')::bigint, 0) + 1)")
        else:
            spent = ("json_set(customers.spent_by_currency, '$.EUR', "
                     "coalesce(json_extract(customers.spent_by_currency, '$.EUR'), 0) + excluded.total_spent)")
            counted = ("json_set(customers.orders_by_currency, '$.EUR', "
                       "coalesce(json_extract(customers.orders_by_currency, '$.EUR'), 0) + 1)")
        cur.execute(
            f"INSERT INTO customers (email, name, phone, addresses, preferences, order_count, spent_by_currency, "
            f"total_spent, currency, vip, tax_id_checked, billing_address, orders_by_currency, first_order_at, "
            f"last_order_at, created_at, updated_at) VALUES ({p}, {p}, {p}, {js()}, {js()}, 1, {js()}, {p}, {p}, "
            f"{p}, {p}, {js()}, {js()}, {p}, {p}, {p}, {p}) "
            f"ON CONFLICT (email) DO UPDATE SET name = excluded.name, phone = excluded.phone, "
            f"order_count = customers.order_count + 1, total_spent = customers.total_spent + excluded.total_spent, "
            f"spent_by_currency = {spent}, orders_by_currency = {counted}, "
            f"last_order_at = excluded.last_order_at, updated_at = excluded.updated_at RETURNING id, order_count",
            (cust["email"], cust["name"], cust["phone"], f"[{address}]", "{}", json.dumps({"EUR": subtotal}),
             subtotal, "EUR", False, False, "null", json.dumps({"EUR": 1}), now, now, now, now))
        customer_id, order_count = cur.fetchone()
        cur.executemany(f"UPDATE stock_levels SET reserved = reserved + {p} WHERE id = {p}",
                        [(qty, by_product[pid][0]) for pid, qty in need.items()])
        flags = ["repeat"] if order_count > 1 else []
        cur.execute(
            f"INSERT INTO orders (status, payment_status, payment_provider, channel, customer_id, email, customer_name, "
            f"phone, shipping_address, billing_address, currency, subtotal, discount_total, shipping_total, tax_total, "
            f"total, non_stock_lines, tax_lines, prices_include_tax, tax_status, presentment_totals, paid_total, "
            f"refunded_total, gift, created_at, updated_at) VALUES ('placed', 'unpaid', 'manual', 'api', {p}, {p}, "
            f"{p}, {p}, {js()}, {js()}, 'EUR', {p}, 0, 0, 0, {p}, {js()}, {js()}, {p}, 'not_given', {js()}, 0, 0, "
            f"{p}, {p}, {p}) RETURNING id",
            (customer_id, cust["email"], cust["name"], cust["phone"], address, "null", subtotal, subtotal, "[]", "[]",
             False, "null", False, now, now))
        order_id = cur.fetchone()[0]
        if flags:
            cur.executemany(f"INSERT INTO order_flags (order_id, flag, position) VALUES ({p}, {p}, {p})",
                            [(order_id, flag, position) for position, flag in enumerate(flags)])
        lines = []
        for ln in body["lines"]:
            prod = products[ln["sku"]]
            cur.execute(
                f"INSERT INTO order_lines (order_id, product_id, sku, name, quantity, unit_price, backordered, "
                f"picked_quantity, returned_quantity, gift, serials) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, 0, 0, 0, "
                f"{p}, {js()}) RETURNING id", (order_id, prod[0], prod[1], prod[2], ln["quantity"], prod[3], False, "[]"))
            lines.append((cur.fetchone()[0], prod, ln["quantity"]))
        cur.executemany(
            f"INSERT INTO reservations (order_id, line_id, product_id, location_id, quantity, status, created_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
            [(order_id, line_id, prod[0], by_product[prod[0]][2], qty, "open", now) for line_id, prod, qty in lines])
        number = 1000 + order_id
        payload = json.dumps({"total": subtotal, "currency": "EUR", "flags": flags})
        cur.execute(f"INSERT INTO order_events (order_id, kind, message, data, created_at) "
                    f"VALUES ({p}, 'order_placed', {p}, {js()}, {p})",
                    (order_id, f"order {number} placed on channel api", payload, now))
        event = {"order_id": order_id, "total": subtotal, "currency": "EUR", "flags": flags}
        cur.execute(f"INSERT INTO retry_tasks (kind, key, payload, status, attempts, next_attempt_at, created_at, "
                    f"updated_at) VALUES ('stage_hook', {p}, {js()}, 'pending', 0, {p}, {p}, {p}) RETURNING id",
                    (uuid.uuid4().hex, json.dumps({"hook": "order_placed", "payload": event, "done": []}), now, now, now))
        cur.fetchone()
        # the stored answer replayed for the key: the order as the API answers it (its main fields)
        answer = {"id": order_id, "number": str(number), "status": "placed", "payment_status": "unpaid",
                  "channel": "api", "flags": flags, "customer": {"id": customer_id, "email": cust["email"],
                                                                  "name": cust["name"], "phone": cust["phone"]},
                  "lines": [{"id": line_id, "sku": prod[1], "name": prod[2], "quantity": qty, "unit_price": prod[3],
                             "total": prod[3] * qty} for line_id, prod, qty in lines],
                  "totals": {"currency": "EUR", "subtotal": subtotal, "total": subtotal},
                  "shipping_address": cust["shipping_address"], "created_at": str(now)}
        cur.execute(f"INSERT INTO idempotency_records (api_key_id, key, request_hash, status_code, response_body, "
                    f"created_at) VALUES ({p}, {p}, {p}, 201, {p}, {p})",
                    (api_key_id, uuid.uuid4().hex, "0" * 64, json.dumps(answer), now))
        if pg:
            conn.commit()
        else:
            cur.execute("COMMIT")
    except BaseException:
        if pg:
            conn.rollback()
        else:
            cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()


def run_limit(db: Database, bodies: list[list[dict]]) -> tuple[dict, list[str]]:
    pg = db.kind == "postgresql"
    threads = len(bodies)
    conns = [db.connect() for _ in range(threads)]
    api_key_id = conns[0].execute("SELECT min(id) FROM api_keys").fetchone()[0]
    if pg:
        conns[0].commit()
    # the raw orders get their own customers: the engine run's rows are left as they are
    bodies = [[{**b, "customer": {**b["customer"], "email": "raw-" + b["customer"]["email"]}} for b in mine]
              for mine in bodies]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def work(index: int):
        conn, mine = conns[index], []
        barrier.wait()
        for body in bodies[index]:
            t0 = time.perf_counter()
            try:
                raw_place(conn, pg, body, api_key_id)
                mine.append(time.perf_counter() - t0)
            except Exception as exc:
                with lock:
                    errors.append(repr(exc))
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return summarize(latencies, wall, len(latencies)), errors


def check_consistency(db: Database) -> str:
    """reserved equals the open reservations, per level (both runs together)."""
    conn = db.connect()
    try:
        bad = conn.execute(
            "SELECT count(*) FROM stock_levels s WHERE s.reserved <> (SELECT coalesce(sum(r.quantity), 0) "
            "FROM reservations r WHERE r.product_id = s.product_id AND r.location_id = s.location_id "
            "AND r.status = 'open')").fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        conn.close()
    return f"{orders} orders in the database, stock levels consistent with reservations: {'yes' if not bad else 'NO'}"


# ---------------------------------------------------------------- one database, end to end

def bench(kind: str, args) -> dict:
    print(f"\n== {kind}: {args.orders} orders, {args.threads} client threads, {args.servers} server "
          f"process(es) of {args.server_threads} threads"
          + (", REDIS_URL set: stage hooks in one `hookshop worker`" if args.redis else ""), flush=True)
    db = Database(kind, args.pg_url, args.redis, args.pg_driver)
    run_cli(db, "init")
    server = Server(db, args.server_threads, args.servers)
    worker = Worker(db) if args.redis else None
    key = setup_shop(db, server.port)
    bodies = order_bodies(args.orders, args.threads)
    load_before = os.getloadavg()[0]
    cpu_before = server.cpu_seconds()
    worker_before = worker.cpu_seconds() if worker else 0.0
    engine, engine_errors = run_engine(server.port, key, bodies, args.warmup)
    cpu = server.cpu_seconds() - cpu_before  # includes the warm-up orders
    if worker:
        engine["backlog_at_end"] = waiting_events(db)
        engine["drain_seconds"], engine["backlog_after_drain"] = (round(v, 1) for v in drain_events(db))
        worker_cpu = worker.cpu_seconds() - worker_before
        engine["worker_cpu_ms_per_order"] = round(worker_cpu * 1000 / (engine["orders"] + args.warmup), 1)
        worker.stop()
    engine["server_cpu_ms_per_order"] = round(cpu * 1000 / (engine["orders"] + args.warmup), 1) if cpu else None
    engine["server_cores_busy"] = round(cpu / engine["seconds"], 2) if engine["seconds"] else None
    load_after = os.getloadavg()[0]
    server.stop()
    if engine_errors:
        print(f"   engine: {len(engine_errors)} failed requests, e.g. {engine_errors[0]}", file=sys.stderr)
        print(server.tail(10), file=sys.stderr)
    limit, limit_errors = run_limit(db, bodies)
    if limit_errors:
        print(f"   limit: {len(limit_errors)} failed transactions, e.g. {limit_errors[0]}", file=sys.stderr)
    consistency = check_consistency(db)
    ratio = engine["per_second"] / limit["per_second"] if limit["per_second"] else 0.0
    result = {"db": kind, "servers": args.servers, "redis": bool(args.redis), "load_average": [round(load_before, 1), round(load_after, 1)],
              "engine": engine, "limit": limit, "ratio": round(ratio, 3),
              "engine_errors": len(engine_errors), "limit_errors": len(limit_errors)}
    row = "   {:<7} {:>8.1f} orders/s   p50 {:>7.1f} ms   p95 {:>7.1f} ms   p99 {:>7.1f} ms   ({} in {} s)"
    print(row.format("engine", engine["per_second"], engine["p50_ms"], engine["p95_ms"], engine["p99_ms"],
                     engine["orders"], engine["seconds"]))
    print(row.format("limit", limit["per_second"], limit["p50_ms"], limit["p95_ms"], limit["p99_ms"],
                     limit["orders"], limit["seconds"]))
    print(f"   ratio engine/limit: {ratio:.2f}   (goal >= 0.25)")
    if engine["server_cpu_ms_per_order"]:
        print(f"   server process: {engine['server_cpu_ms_per_order']} ms CPU per order, "
              f"{engine['server_cores_busy']} cores busy; load average {load_before:.1f} -> {load_after:.1f} "
              f"on {os.cpu_count()} CPUs")
    if worker:
        print(f"   worker: {engine['worker_cpu_ms_per_order']} ms CPU per order; {engine['backlog_at_end']} events "
              f"waiting when the last order was answered, delivered {engine['drain_seconds']} s later "
              f"({engine['backlog_after_drain']} left)")
    print(f"   {consistency}", flush=True)
    _cleanup_all()
    return result


# ---------------------------------------------------------------- profile (in-process)

def in_process_shop(db: Database, **config) -> tuple:
    """An app on ``db`` in this process (embedded mode), its schema, an API key and the benchmark's
    products with their stock: ``(app, test client, headers)``."""
    from engine.app import create_app, init_schema
    from engine.services import auth

    os.environ.pop("REDIS_URL", None)
    config = {"INSTANCE": db.tmp, **config}
    if db.kind == "postgresql":
        config["DATABASE_URL"] = db.engine_url
    app = create_app(config)
    init_schema(app)
    with app.app_context():
        _, key = auth.create_api_key("bench", ["read", "write", "admin"])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    for p in range(PRODUCTS):
        client.post("/api/v1/products", json={"sku": f"BENCH-{p}", "name": f"Bench product {p}",
                                              "price": 990 + 500 * p, "currency": "EUR"}, headers=headers)
        client.post("/api/v1/stock/receipts", json={"sku": f"BENCH-{p}", "quantity": STOCK_PER_PRODUCT},
                    headers=headers)
    return app, client, headers


def profile(kind: str, args) -> None:
    """Place orders in this process through Flask's test client under pyinstrument."""
    from pyinstrument import Profiler
    from sqlalchemy import event

    from engine.db import db as sa_db

    app, client, headers = in_process_shop(Database(kind, args.pg_url, pg_driver=args.pg_driver))
    bodies = [b for mine in order_bodies(args.orders, 1) for b in mine]
    statements = [0]
    with app.app_context():
        engine = sa_db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_a, **_k):
        statements[0] += 1

    for body in bodies[:args.warmup]:
        client.post("/api/v1/orders", json={**body, "customer": {**body["customer"], "email": "w@bench.example"}},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    statements[0] = 0
    profiler = Profiler(interval=0.001)
    start = time.perf_counter()
    profiler.start()
    for body in bodies:
        response = client.post("/api/v1/orders", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
        if response.status_code != 201:
            raise SystemExit(f"placement failed: {response.status_code} {response.get_json()}")
    profiler.stop()
    wall = time.perf_counter() - start
    print(f"\n== profile {kind}: {len(bodies)} placements in one thread, in-process: "
          f"{len(bodies) / wall:.1f} orders/s under the profiler; "
          f"{statements[0] / len(bodies):.1f} SQL statements per placement (BEGIN counted, COMMIT not)")
    print(profiler.output_text(unicode=True, color=False, show_all=False, short_mode=False))
    areas = self_time_by_area(profiler.last_session.root_frame())
    total = sum(areas.values()) or 1.0
    print("self time by area:")
    for area, seconds in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"   {seconds / total * 100:5.1f} %  {area}")
    html = os.path.join(tempfile.gettempdir(), f"hookshop-place-orders-{kind}.html")
    with open(html, "w") as fh:
        fh.write(profiler.output_html())
    print(f"HTML report: {html}")
    with app.app_context():
        sa_db.session.remove()
        sa_db.engine.dispose()
    _cleanup_all()


AREAS = [  # (area, predicate on (file path, function name)), the first that matches wins
    ("database: driver calls and waiting (execute, commit)",
     lambda path, fn: "/psycopg" in path or "sqlite3" in path or "sqlite3." in fn
     or (path.endswith("sqlalchemy/engine/default.py") and fn.startswith(("do_execute", "do_commit", "do_begin")))
     or (path.endswith("sqlalchemy/engine/base.py") and fn in ("_commit_impl", "_rollback_impl"))),
    ("SQLAlchemy: ORM unit of work, statement building and compiling", lambda path, fn: "/sqlalchemy/" in path),
    ("input validation: webargs, marshmallow, flask-smorest",
     lambda path, fn: any(p in path for p in ("/webargs/", "/marshmallow/", "/flask_smorest/", "/apispec/"))),
    ("Flask, Werkzeug (routing, request, response, test client)",
     lambda path, fn: "/flask/" in path or "/werkzeug/" in path),
    ("hookshop engine code", lambda path, fn: "/engine/" in path and "site-packages" not in path),
    ("blinker, pluggy", lambda path, fn: "/blinker/" in path or "/pluggy/" in path),
    ("json", lambda path, fn: "/json/" in path),
]


def self_time_by_area(root) -> dict[str, float]:
    """Sum the self time (pyinstrument's ``[self]`` leaves) by the library of the frame it belongs to."""
    totals: dict[str, float] = {}
    stack = [(root, "", "")] if root is not None else []
    while stack:
        frame, parent_path, parent_fn = stack.pop()
        builtin = frame.file_path in (None, "<built-in>")
        path = parent_path if builtin else frame.file_path
        fn = parent_fn if builtin else frame.function
        if frame.children:
            stack.extend((child, path, fn) for child in frame.children)
            continue
        if "place_orders.py" in path:
            continue  # the benchmark's own loop
        area = next((name for name, match in AREAS if match(path, fn)), "other (stdlib, ...)")
        totals[area] = totals.get(area, 0.0) + frame.time
    return totals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=2000, help="orders per database (default 2000)")
    parser.add_argument("--threads", type=int, default=8, help="client threads, and threads of the raw-SQL limit")
    parser.add_argument("--server-threads", type=int, default=8, help="waitress threads per server process")
    parser.add_argument("--servers", type=int, default=1,
                        help="server processes (hookshop serve --workers N; default 1)")
    parser.add_argument("--redis", metavar="URL", default=None,
                        help="the production mode: REDIS_URL for the server(s) and one `hookshop worker` "
                             "(a private queue), e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--warmup", type=int, default=40, help="orders placed before measuring")
    parser.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (a private schema is created and dropped)")
    parser.add_argument("--pg-driver", choices=["psycopg", "psycopg2"], default="psycopg",
                        help="the engine's PostgreSQL driver (DATABASE_URL=postgresql+psycopg2://... for psycopg2; "
                             "the limit runs on psycopg 3 either way)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="profile placements in-process under pyinstrument instead of benchmarking")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"hookshop placement benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}")
    try:
        if args.profile:
            for kind in kinds:
                profile(kind, args)
            return 0
        results = [bench(kind, args) for kind in kinds]
    except KeyboardInterrupt:
        print("\ninterrupted: server stopped, temporary database removed", file=sys.stderr)
        return 130
    finally:
        _cleanup_all()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    failed = any(r["engine_errors"] or r["limit_errors"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
