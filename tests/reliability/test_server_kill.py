"""``kill -9`` of a server process during a burst of orders (``hookshop serve --workers 2``).

PostgreSQL only (several server processes). 8 clients place orders, each with an ``Idempotency-Key``, and
send a request that got no answer (its process died) again with the same key, as a client should. One
server process is killed after 12 acknowledged orders, the other (or the replacement) after 28; the
supervisor replaces them. Afterwards: the orders in the database are exactly the acknowledged ones (none
lost, none created twice by a retry, none left half written: each has its line, its open reservation and
its ``order_placed`` outbox event), and the engine's invariants hold.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from engine.serve_processes import pids_of_workers
from reliability.conftest import EVENTS, kill9, place, stock_up, wait_for

CLIENTS, ORDERS, KILL_AT = 8, 40, (12, 28)


class Burst:
    def __init__(self, base, shop):
        self.base, self.shop = base, shop
        self.acknowledged, self.unanswered, self.lock = [], 0, threading.Lock()

    def client(self, n: int) -> None:
        while True:
            with self.lock:
                if len(self.acknowledged) >= ORDERS:
                    return
            key = uuid.uuid4().hex
            for _ in range(50):  # the same request again until it is answered
                try:
                    status, body = place(self.base, self.shop, "BOX", 1, key=key, email=f"c{n}@example.com")
                    break
                except OSError:  # the process answering it died: no answer, send it again
                    with self.lock:
                        self.unanswered += 1
            else:
                raise AssertionError("no answer after 50 tries")
            assert status == 201, body
            with self.lock:
                self.acknowledged.append(body["id"])

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def test_killed_server_processes_leave_only_whole_acknowledged_orders(shop, processes):
    base = processes.serve(shop, shop.env(), workers=2)
    supervisor = processes.started[-1]
    stock_up(base, shop, "BOX", 500)
    burst = Burst(base, shop)
    killed = []
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(burst.client, n) for n in range(CLIENTS)]
        for at in KILL_AT:
            wait_for(lambda at=at: burst.count() >= at or any(f.done() for f in futures), 120, f"{at} orders")
            victim = wait_for(lambda: len(w := pids_of_workers(supervisor.pid)) == 2 and w, 120, "two workers")[0]
            kill9(victim)
            killed.append(victim)
        for future in futures:
            future.result(timeout=180)
    assert len(set(killed)) == 2

    acknowledged = burst.acknowledged
    assert len(acknowledged) == len(set(acknowledged)) >= ORDERS
    in_db = [row[0] for row in shop.rows("SELECT id FROM orders ORDER BY id")]
    assert sorted(acknowledged) == in_db  # every acknowledged order exists, and nothing else
    whole = shop.rows(
        "SELECT o.id, (SELECT count(*) FROM order_lines l WHERE l.order_id = o.id),"
        " (SELECT count(*) FROM reservations r JOIN order_lines l ON l.id = r.line_id"
        "   WHERE l.order_id = o.id AND r.status = 'open'),"
        f" (SELECT count(*) FROM {EVENTS} e WHERE e.hook = 'order_placed'"
        "   AND (e.payload->>'order_id')::int = o.id) FROM orders o ORDER BY o.id")
    assert whole == [(order_id, 1, 1, 1) for order_id in in_db]
    assert shop.scalar("SELECT reserved FROM stock_levels") == len(in_db)
    shop.check_invariants()
