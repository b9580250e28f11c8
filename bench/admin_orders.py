"""The admin's order list (``order_list.list_orders`` as /admin/orders calls it: flags loaded, 50 a page) with
the filters the API does not have, from 10k to 1M orders: exact search (number, e-mail, serial, tracking
number) and date ranges (an id range found by bisection). Every case should cost the same at any size.

    python bench/admin_orders.py --db sqlite --sizes 10000 1000000
    python bench/admin_orders.py --db postgresql --sizes 10000 100000

It fills the database as bench/list_orders.py does (its Filler: one order a minute from 2024-01-01), then
times each case through the service (database + ORM, no HTML) and counts its SQL statements. Nothing here
is a test: numbers depend on the machine. See docs/admin/orders.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from list_orders import PG_URL, WHOLESALE, Database, Filler  # noqa: E402


def cases(filler: Filler, size: int) -> list[tuple[str, dict]]:
    start = filler.start
    old = start + timedelta(minutes=size // 10)  # a day 10 % from the oldest order
    return [
        ("no filter", {}),
        ("search: order number", {"search": str(1000 + size // 2)}),
        ("search: e-mail (wholesale)", {"search": f"c{WHOLESALE}@bench.example"}),
        ("search: e-mail (one customer)", {"search": "c7@bench.example"}),
        ("search: serial, none", {"search": "NO-SUCH-SERIAL"}),
        ("date: one old day", {"created_from": old, "created_to": old + timedelta(days=1)}),
        ("date: from an old day on", {"created_from": old}),
        ("date: up to an old day", {"created_to": old}),
        ("date + status=paid", {"created_from": old, "created_to": old + timedelta(days=7), "status": "paid"}),
        ("date + flag=gift", {"created_from": old, "created_to": old + timedelta(days=7), "flag": "gift"}),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args(argv)

    from sqlalchemy import event

    from engine.app import create_app, init_schema
    from engine.db import db
    from engine.services import order_list

    database = Database(args.db, args.pg_url)
    try:
        app = create_app(dict(database.config))
        init_schema(app)
        with app.app_context():
            engine = db.engine
        count = {"n": 0}
        event.listen(engine, "before_cursor_execute", lambda *a, **k: count.__setitem__("n", count["n"] + 1))
        filler = Filler(app, args.batch)
        for size in args.sizes:
            seconds = filler.fill(size)
            print(f"== {args.db}, {size:,} orders (filled in {seconds:.1f} s)", flush=True)
            for label, filters in cases(filler, size):
                times, statements, rows = [], 0, 0
                for round_ in range(3 + args.requests):
                    with app.app_context():
                        count["n"] = 0
                        t0 = time.perf_counter()
                        page, _ = order_list.list_orders(**filters, limit=50, relations=("flag_rows",))
                        elapsed = time.perf_counter() - t0
                        db.session.remove()
                    if round_ >= 3:
                        times.append(elapsed)
                        statements, rows = count["n"], len(page)
                print(f"   {label:<30} p50 {statistics.median(times) * 1000:>7.1f} ms   max "
                      f"{max(times) * 1000:>7.1f} ms   {rows:>3} orders   {statements} statements", flush=True)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
