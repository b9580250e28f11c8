"""crm_salesforce: how long a placed order takes to reach Salesforce (commit to upsert), against the loopback
Salesforce of the tests (tests/plugins/crm_salesforce/fake_salesforce.py) through the real simple-salesforce
client.

One app in the embedded mode (stage hooks on the background delivery thread, as ``hookshop serve`` without
Redis) on a fresh SQLite file, or a private PostgreSQL schema with ``--db postgresql``. ``--orders`` orders are
placed through the API from ``--threads`` client threads; for each the delay runs from the API's answer (the
placement has committed before it answers) to the moment the fake applied the Collections upsert that holds
the order. Printed: p50, p95 and max delay, and the Collections calls made (a burst goes in few calls:
up to 200 records each). ``--latency`` adds a delay in ms to every Salesforce answer; ``--pause`` paces the
clients (ms between orders per thread). Flat out, the delay is mostly the wait in the core's delivery queue
(one delivery thread per process in the embedded mode); paced below that throughput it is the push itself.

    .venv/bin/python bench/crm_delay.py --orders 200 --threads 4
    .venv/bin/python bench/crm_delay.py --orders 100 --threads 1 --pause 100
    .venv/bin/python bench/crm_delay.py --orders 500 --threads 8 --latency 80 --db postgresql
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "crm_salesforce"))

from fake_salesforce import FakeSalesforce  # noqa: E402 - the tests' stand-in

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _database(kind: str, folder: str):
    if kind == "sqlite":
        return f"sqlite:///{folder}/bench.sqlite", lambda: None
    from sqlalchemy import create_engine, text

    name = f"bench_crm_{uuid.uuid4().hex[:8]}"
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))

    def drop():
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.0, help="ms added to every Salesforce answer")
    parser.add_argument("--pause", type=float, default=0.0, help="ms each client thread waits between orders")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    from engine.app import create_app, init_schema
    from engine.jobs import drain
    from engine.services import auth
    from plugins.crm_salesforce import client

    fake = FakeSalesforce(delay=args.latency / 1000).start()
    client.new_session = fake.session  # the plugin's client reaches the fake instead of the internet
    arrived: dict[str, float] = {}
    fake.on_upsert = lambda sobject, records: arrived.update(
        {r["Hookshop_Id__c"]: time.monotonic() for r in records if sobject == "Order" and r["Hookshop_Id__c"] not in arrived})

    folder = tempfile.mkdtemp(prefix="bench-crm-")
    url, drop = _database(args.db, folder)
    app = create_app({"DATABASE_URL": url, "INSTANCE": folder, "REDIS_URL": None, "API_KEY_CACHE_SECONDS": 60,
                      "PLUGINS_ALLOWED": ["crm_salesforce"],
                      "SALESFORCE_INSTANCE_URL": "https://shop.my.salesforce.com",
                      "SALESFORCE_USERNAME": fake.username, "SALESFORCE_PASSWORD": fake.password,
                      "SALESFORCE_SECURITY_TOKEN": fake.security_token,
                      "SALESFORCE_DEFAULT_ACCOUNT_ID": "001000000000000WEB"})
    try:
        init_schema(app)
        with app.app_context():
            _, key = auth.create_api_key("bench", ["read", "write", "admin"])
        headers = {"Authorization": f"Bearer {key}"}
        setup = app.test_client()
        setup.post("/api/v1/products", json={"sku": "MUG", "name": "Mug", "price": 1200, "currency": "EUR"},
                   headers=headers)
        setup.post("/api/v1/stock/receipts", json={"sku": "MUG", "quantity": args.orders * 2}, headers=headers)
        answered: dict[str, float] = {}
        lock = threading.Lock()
        counter = iter(range(args.orders))

        def place():
            web = app.test_client()
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                body = {"customer": {"email": f"bench{n}@example.com", "name": f"Bench Buyer {n}",
                                     "shipping_address": {"line1": "1 Road", "city": "Berlin", "postal_code": "10115",
                                                          "country": "DE"}},
                        "lines": [{"sku": "MUG", "quantity": 1}]}
                resp = web.post("/api/v1/orders", json=body, headers=headers)
                done = time.monotonic()
                assert resp.status_code == 201, resp.get_json()
                answered[str(resp.get_json()["id"])] = done
                if args.pause:
                    time.sleep(args.pause / 1000)

        started = time.monotonic()
        threads = [threading.Thread(target=place) for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        placing = time.monotonic() - started
        drain(app, timeout=120)
        delays = sorted((arrived[i] - answered[i]) * 1000 for i in answered if i in arrived)
        calls = [c for c in fake.data_calls("collections")]
        missing = len(answered) - len(delays)
        print(f"{args.db}: {len(answered)} orders placed in {placing:.1f} s from {args.threads} threads "
              f"(Salesforce latency {args.latency:.0f} ms)")
        if delays:
            p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
            print(f"commit to Salesforce: p50 {statistics.median(delays):.0f} ms, p95 {p95:.0f} ms, "
                  f"max {delays[-1]:.0f} ms" + (f"; {missing} orders did not arrive" if missing else ""))
        sizes = [len(c.body["records"]) for c in calls]
        print(f"Collections calls: {len(calls)} for {len(answered)} orders and their contacts "
              f"({sum(sizes)} records, at most {max(sizes) if sizes else 0} in one call)")
    finally:
        with app.app_context():
            from engine.db import db

            db.session.remove()
            db.engine.dispose()
        drop()
        fake.stop()


if __name__ == "__main__":
    main()
