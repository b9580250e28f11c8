"""Webhook ingest: signed Shopify ``orders/create`` webhooks per second into channel_webhook's endpoint.

Per database (``sqlite``, ``postgresql`` or ``both``) a real ``hookshop serve`` on a fresh database (the
setup of ``bench/place_orders.py``: 5 products with plenty of stock), a Shopify channel with a secret,
then ``--orders`` real-shaped Shopify orders (multi-currency, taxes included, a discount, a gift card
line, a shipping line; one payload per order with its own id and webhook id) posted from
``--threads`` client threads to ``POST /api/v1/channels/<name>/orders``, each signed as Shopify signs
(``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body). Printed: orders/s, p50/p95/p99, the
answers by status. Exit status 1 if any answer was not a 201.

    .venv/bin/python bench/ingest_webhooks.py --db both --orders 1000 --threads 8
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import http.client
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from place_orders import (  # noqa: E402 - the sibling benchmark's server and setup
    PG_URL,
    Client,
    Database,
    Server,
    _cleanup_all,
    run_cli,
    setup_shop,
    summarize,
)

SECRET = "shpss_bench_0c4f3e9b1a2d7f6e5c8b9a0d1e2f"
CHANNEL = "shop-bench"


# the real-shaped Shopify order of tests/plugins/channel_webhook/test_real_payloads.py (Shopify's REST order
# document): a shop in EUR, a buyer paying CHF, prices including 19% VAT, a free-shipping code, a gift card
# line, no postcode in Hong Kong; each order gets its own id, customer and first line's sku in `signed`
SHOPIFY_ORDER = json.loads(
    (ROOT / "tests" / "plugins" / "channel_webhook" / "samples" / "shopify_order_multicurrency.json").read_text())


def signed(number: int) -> tuple[bytes, dict]:
    """One order's body and Shopify's headers for it (a new order id, customer and webhook id each)."""
    payload = copy.deepcopy(SHOPIFY_ORDER)
    payload["id"] = 5_600_000_000_000 + number
    payload["customer"]["id"] = 7000 + number % 500  # returning buyers
    payload["line_items"][0]["sku"] = f"BENCH-{number % 5}"
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                  "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Shop-Domain": "bench.myshopify.com",
                  "X-Shopify-API-Version": "2024-07", "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                  "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": datetime.now(UTC).isoformat()}


def post_all(port: int, requests: list[list[tuple[bytes, dict]]]) -> tuple[dict, Counter, list[str]]:
    latencies, statuses, errors = [], Counter(), []
    lock = threading.Lock()
    barrier = threading.Barrier(len(requests) + 1)

    def work(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        barrier.wait()
        for body, headers in mine:
            started = time.perf_counter()
            conn.request("POST", f"/api/v1/channels/{CHANNEL}/orders", body, headers)
            response = conn.getresponse()
            answer = response.read()
            with lock:
                statuses[response.status] += 1
                if response.status == 201:
                    latencies.append(time.perf_counter() - started)
                elif len(errors) < 5:
                    errors.append(f"{response.status}: {answer[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=work, args=(mine,), daemon=True) for mine in requests]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return summarize(latencies, time.perf_counter() - started, len(latencies)), statuses, errors


def bench(kind: str, args) -> dict:
    print(f"\n== {kind}: {args.orders} signed Shopify orders, {args.threads} client threads", flush=True)
    db = Database(kind, args.pg_url)
    run_cli(db, "init")
    server = Server(db, args.server_threads)
    key = setup_shop(db, server.port)
    client = Client(server.port, key)
    status, answer = client.post("/channels", {"name": CHANNEL, "format": "shopify", "secret": SECRET})
    if status != 201:
        raise SystemExit(f"creating the channel failed: {status} {answer}")
    client.conn.close()
    warm = post_all(server.port, [[signed(-1 - i)] for i in range(args.threads)])  # connections and caches
    if warm[1] != Counter({201: args.threads}):
        raise SystemExit(f"warm-up answers {dict(warm[1])}: {warm[2]}\n{server.tail()}")
    per_thread = [[signed(n) for n in range(t, args.orders, args.threads)] for t in range(args.threads)]
    cpu_before = server.cpu_seconds()
    figures, statuses, errors = post_all(server.port, per_thread)
    cpu = server.cpu_seconds() - cpu_before
    server.stop()
    figures.update(db=kind, answers={str(k): v for k, v in statuses.items()}, load_average=round(os.getloadavg()[0], 1),
                   server_cpu_ms_per_order=round(cpu * 1000 / max(1, figures["orders"]), 1))
    print(f"   {figures['per_second']:>7.1f} orders/s   p50 {figures['p50_ms']} ms   p95 {figures['p95_ms']} ms   "
          f"p99 {figures['p99_ms']} ms   ({figures['orders']} in {figures['seconds']} s)")
    print(f"   answers {dict(statuses)}; server CPU {figures['server_cpu_ms_per_order']} ms per order; "
          f"load average {figures['load_average']} on {os.cpu_count()} CPUs", flush=True)
    for error in errors:
        print(f"   {error}", file=sys.stderr)
    _cleanup_all()
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--server-threads", type=int, default=8)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    try:
        results = [bench(kind, args) for kind in kinds]
    finally:
        _cleanup_all()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["answers"] == {"201": r["orders"]} for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
