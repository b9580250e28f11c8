"""No oversell through HTTP with several server processes (``hookshop serve --workers 2``).

PostgreSQL only: the scenario is about several processes deciding on one stock level, which is the
production setup (SQLite across processes is not). 50 clients released together ask for the one unit
left: exactly one order is placed; 32 clients ask for the last 5 units: exactly 5. Three rounds, each on
a fresh product. The others are refused with 409 ``insufficient_stock``, and the engine's invariants hold.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from reliability.conftest import call, place, stock_up


def _race(base, shop, sku: str, clients: int) -> list[tuple[int, dict]]:
    """``clients`` threads, released at once, each POSTing an order for one unit of ``sku``."""
    barrier = threading.Barrier(clients)

    def one(i):
        barrier.wait(30)
        return place(base, shop, sku, 1, email=f"client{i}@example.com")

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def _settle(results, expected_orders: int) -> set[int]:
    placed = {body["id"] for status, body in results if status == 201}
    refused = [body for status, body in results if status != 201]
    assert len(placed) == expected_orders, results
    assert all(b.get("code") == "insufficient_stock" for b in refused), refused
    assert len(placed) + len(refused) == len(results)
    return placed


def test_no_oversell_through_several_server_processes(shop, processes):
    base = processes.serve(shop, shop.env(), workers=2)
    for round_ in range(3):
        one, five = f"ONE-{round_}", f"FIVE-{round_}"
        stock_up(base, shop, one, 1)
        stock_up(base, shop, five, 8)
        for _ in range(3):  # 8 - 3: the last 5 units
            assert place(base, shop, five)[0] == 201

        placed_one = _settle(_race(base, shop, one, 50), 1)
        placed_five = _settle(_race(base, shop, five, 32), 5)

        for sku, placed, on_hand in ((one, placed_one, 1), (five, placed_five, 8)):
            status, level = call("GET", f"{base}/api/v1/stock/{sku}", headers=shop.headers())
            assert status == 200
            assert (level["on_hand"], level["reserved"], level["available"]) == (on_hand, on_hand, 0), level
            rows = shop.rows("SELECT o.id, l.quantity FROM orders o JOIN order_lines l ON l.order_id = o.id "
                             "JOIN products p ON p.id = l.product_id WHERE p.sku = :sku", sku=sku)
            assert {order_id for order_id, _ in rows} >= placed and sum(q for _, q in rows) == on_hand
    shop.check_invariants()
