"""Journal export throughput and memory: CSV and beancount, 10,000 vs 1,000,000 postings.

    python bench/export_journal.py                          # SQLite: 10k and 1M postings (~2-3 min)
    python bench/export_journal.py --sizes 10000 100000     # other sizes
    python bench/export_journal.py --db postgresql          # also (or only: --db postgresql) PostgreSQL
    python bench/export_journal.py --json results.json

For each size it

1. creates a fresh database with hookshop's schema (the accounting_export tables and their balance and
   immutability triggers included) and bulk-inserts journal entries directly — postings first, then the
   entry rows, in large transactions, with the database's balance checks active — three or four
   postings per entry (sales, payments, refunds, shipments), spread over two years, one currency;
2. exports the whole journal as CSV and as beancount with the plugin's own exporters (the same code as
   ``hookshop accounting export``), each in a **fresh child process**, once untraced for the speed
   (postings/s) and once under ``tracemalloc`` for the peak Python heap; the child also reports its
   peak resident set (``ru_maxrss``), which includes the interpreter and the app (~70 MB);
3. prints rows/s and peak memory per size and format: streaming means the peak does not grow with the
   range (compare the sizes).

Nothing here is a test: the numbers depend on the machine. See docs/performance.md (## Journal export).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = date(2025, 1, 1)
ACCOUNTS = {
    "sale": [("Assets:Receivables:Customers", "receivable"), ("Income:Sales", "sales"),
             ("Liabilities:VAT:19", "vat")],
    "payment": [("Assets:Clearing:Stripe", "clearing"), ("Assets:Receivables:Customers", "receivable"),
                ("Expenses:PaymentFees", "fees"), ("Assets:Clearing:Stripe", "clearing")],
    "refund": [("Income:Refunds", "refunds"), ("Liabilities:VAT:19", "vat"), ("Assets:Clearing:Stripe", "clearing")],
    "shipment": [("Expenses:COGS", "cogs"), ("Assets:Inventory", "inventory")],
}


def _rows(postings: int, seed: int = 7):
    """Yield (entry row, posting rows) until ``postings`` postings are made."""
    rng = random.Random(seed)
    made, entry_id = 0, 0
    span = 730
    while made < postings:
        entry_id += 1
        kind = rng.choice(("sale", "sale", "payment", "refund", "shipment"))
        gross = rng.randint(500, 90_000)
        vat = gross - round(gross / 1.19)
        if kind == "sale":
            amounts = [gross, -(gross - vat), -vat]
        elif kind == "payment":
            fee = 25 + gross // 70
            amounts = [gross, -gross, fee, -fee]
        elif kind == "refund":
            amounts = [gross - vat, vat, -gross]
        else:
            amounts = [gross // 3, -(gross // 3)]
        accounts = ACCOUNTS[kind]
        amounts = amounts[:max(2, min(len(amounts), postings - made))] if postings - made < len(amounts) else amounts
        if sum(amounts):  # a short last entry: keep it balanced
            amounts = [abs(amounts[0]), -abs(amounts[0])]
        day = START + timedelta(days=(entry_id * span) // max(1, postings // 3))
        order = 1000 + entry_id // 3
        entry = (entry_id, uuid.uuid4().hex, f"bench:{entry_id}", kind, order - 1000, str(order), day.isoformat(),
                 "shop", "Customer " + str(order % 977), f"Order {order}: {kind}")
        lines = [(entry_id, n, accounts[n - 1][0], accounts[n - 1][1], amount, "EUR", "19" if kind != "shipment"
                  else None) for n, amount in enumerate(amounts, 1)]
        made += len(lines)
        yield entry, lines


ENTRY_SQL = ("INSERT INTO accounting_export_entries (id, uid, source_key, kind, order_id, order_number, booking_date,"
             " channel, payee, description, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p},"
             " CURRENT_TIMESTAMP)")
POSTING_SQL = ("INSERT INTO accounting_export_postings (entry_id, line_no, account, role, amount, currency, tax_rate)"
               " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})")


def _schema(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    from engine.app import create_app, init_schema

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None})
    init_schema(app)


def fill_sqlite(path: Path, postings: int) -> float:
    import sqlite3

    _schema(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    entries, lines = [], []
    conn.execute("BEGIN IMMEDIATE")
    for entry, rows in _rows(postings):
        entries.append(entry)
        lines.extend(rows)
        if len(lines) >= 50_000:
            conn.executemany(POSTING_SQL.format(p="?"), lines)  # postings first, then their entries
            conn.executemany(ENTRY_SQL.format(p="?"), entries)
            entries, lines = [], []
    if lines:
        conn.executemany(POSTING_SQL.format(p="?"), lines)
        conn.executemany(ENTRY_SQL.format(p="?"), entries)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def fill_postgres(url: str, postings: int) -> float:
    import psycopg

    _schema(url)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(plain) as conn:
        entries, lines = [], []
        for entry, rows in _rows(postings):
            entries.append(entry)
            lines.extend(rows)
            if len(lines) >= 50_000:
                _copy(conn, entries, lines)
                entries, lines = [], []
        if lines:
            _copy(conn, entries, lines)
        conn.execute("SELECT setval(pg_get_serial_sequence('accounting_export_entries', 'id'), "
                     "(SELECT max(id) FROM accounting_export_entries))")
        conn.commit()
        conn.execute("ANALYZE accounting_export_entries")
        conn.execute("ANALYZE accounting_export_postings")
        conn.commit()
    return time.perf_counter() - started


def _copy(conn, entries, lines) -> None:
    with conn.cursor() as cur:
        with cur.copy("COPY accounting_export_postings (entry_id, line_no, account, role, amount, currency, tax_rate)"
                      " FROM STDIN") as copy:
            for row in lines:
                copy.write_row(row)
        with cur.copy("COPY accounting_export_entries (id, uid, source_key, kind, order_id, order_number, "
                      "booking_date, channel, payee, description, created_at) FROM STDIN") as copy:
            for row in entries:
                copy.write_row((*row, "2026-01-01T00:00:00+00:00"))
    conn.commit()  # the deferred balance checks run here, for every posting


# --------------------------------------------------------------------------- the child: one export


def child(url: str, fmt: str, out: str, traced: bool) -> None:
    import resource
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    from engine.app import create_app
    from plugins.accounting_export import exporters

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None})
    with app.app_context():
        exporter = exporters.EXPORTERS[fmt]
        rows = exporters.count_postings()
        if traced:
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        with open(out, "w", encoding="utf-8", newline="") as fh:
            exporter.export(None, None, fh)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - base if traced else None
    print(json.dumps({"rows": rows, "seconds": seconds, "traced_peak": peak, "bytes": os.path.getsize(out),
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_export(url: str, fmt: str, out: Path, traced: bool) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", url, fmt, str(out), "1" if traced else "0"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    if result.returncode:
        raise SystemExit(f"export failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000], help="postings per run")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--formats", nargs="+", default=["csv", "beancount"])
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hookshop-bench-export-"))
    results = []
    schemas = []
    try:
        for db in (("sqlite", "postgresql") if args.db == "both" else (args.db,)):
            for size in args.sizes:
                if db == "sqlite":
                    path = work / f"journal-{size}.sqlite"
                    fill = fill_sqlite(path, size)
                    url = f"sqlite:///{path}"
                else:
                    schema = f"bench_export_{os.getpid()}_{size}"
                    import psycopg

                    with psycopg.connect(args.pg_url, autocommit=True) as conn:
                        conn.execute(f'CREATE SCHEMA "{schema}"')
                    schemas.append(schema)
                    url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1) + \
                        f"?options=-csearch_path%3D{schema}"
                    fill = fill_postgres(url, size)
                print(f"[{db}] {size:>9,} postings inserted in {fill:6.1f} s ({size / fill:,.0f}/s, balance checks on)",
                      flush=True)
                for fmt in args.formats:
                    out = work / f"out-{size}.{fmt}"
                    speed = run_export(url, fmt, out, traced=False)
                    memory = run_export(url, fmt, out, traced=True)
                    row = {"db": db, "postings": size, "format": fmt, "seconds": round(speed["seconds"], 2),
                           "rows_per_s": round(speed["rows"] / speed["seconds"]),
                           "traced_peak_kb": round(memory["traced_peak"] / 1024),
                           "maxrss_mb": round(speed["maxrss_kb"] / 1024, 1), "output_mb": round(speed["bytes"] / 2**20, 1)}
                    results.append(row)
                    print(f"[{db}] {size:>9,} {fmt:9} {row['rows_per_s']:>9,} postings/s  {row['seconds']:7.2f} s  "
                          f"traced peak {row['traced_peak_kb']:>6,} kB  max RSS {row['maxrss_mb']:6.1f} MB  "
                          f"output {row['output_mb']:7.1f} MB", flush=True)
                    out.unlink()
        print("\npeak memory, smallest vs largest range (streaming: it must not grow with the range):")
        for db in sorted({r["db"] for r in results}):
            for fmt in args.formats:
                rows = sorted((r for r in results if r["db"] == db and r["format"] == fmt), key=lambda r: r["postings"])
                if len(rows) > 1:
                    small, large = rows[0], rows[-1]
                    print(f"  [{db}] {fmt:9} traced {small['traced_peak_kb']:,} kB -> {large['traced_peak_kb']:,} kB, "
                          f"RSS {small['maxrss_mb']} MB -> {large['maxrss_mb']} MB "
                          f"({large['postings'] // small['postings']}x the postings)")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if schemas:
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
    else:
        main()
