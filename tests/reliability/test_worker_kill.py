"""``kill -9`` of an rq worker (``hookshop worker``) in the middle of its jobs, three times, then a restart.

PostgreSQL only (several processes: a server, workers). The stage hooks of 6 placed and paid orders wait on
a private Redis; the worker is killed (1) while a webhook POST is in flight, (2) right after the receiver
answered 200 but before the worker could record it, (3) in flight again, later in the queue. A killed
worker's claims (the outbox event's lease, the delivery's task lease on the retry queue) run out before the next one starts: the
test moves those leases to now, which is what the clock would do after ``LEASE`` (5 min) and the
delivery's lease (2 min). Then every outbox event is done, every webhook reached the receiver, a receiver
that deduplicates on ``webhook-id`` processed each event exactly once, and no charge (payment, its journal
entry) or stock movement exists twice.
"""

from __future__ import annotations

import os
import signal
import threading

from reliability.conftest import EVENTS, call, kill9, outbox_settled, place, stock_up, subscribe, wait_for

ORDERS = 6


def _expire_leases_of_the_dead(shop) -> None:
    """The killed worker's leases have run out (no live process holds one: the next worker is not started)."""
    shop.execute("UPDATE retry_tasks SET leased_until = now() WHERE status = 'running' "
                 "AND leased_until > now()")  # the stage hooks' and the deliveries' claims on the retry queue


def _kill_in_flight(processes, env, receiver):
    """Start a worker, hold the next webhook it sends, kill it while the POST waits for its answer."""
    receiver.held.clear()
    receiver.release.clear()
    receiver.hold = True
    worker = processes.worker(env)
    wait_for(receiver.held.is_set, 180, "the worker's webhook POST")
    kill9(worker)
    receiver.release.set()


def _kill_after_answer(processes, env, receiver, answers: int):
    """Start a worker and kill it right after the receiver's ``answers``-th answer went out."""
    worker = processes.worker(env)
    killed = threading.Event()

    def after(count):
        if count >= answers and not killed.is_set():
            os.kill(worker.pid, signal.SIGKILL)
            killed.set()

    receiver.after_answer = after
    wait_for(killed.is_set, 180, f"answer number {answers}")
    worker.wait(30)
    receiver.after_answer = None


def test_killed_workers_lose_nothing_and_repeat_nothing(shop, private_redis, receiver, processes):
    env = shop.env(REDIS_URL=private_redis.url)
    base = processes.serve(shop, env, workers=1)
    sub = subscribe(base, shop, receiver)
    stock_up(base, shop, "MUG", 20)
    orders = []
    for i in range(ORDERS):
        status, order = place(base, shop, "MUG", 1, email=f"buyer{i}@example.com")
        assert status == 201, order
        status, paid = call("POST", f"{base}/api/v1/orders/{order['id']}/pay", {}, shop.headers())
        assert status == 200 and paid["status"] == "paid", paid
        orders.append(order["id"])
    events = [row[0] for row in shop.rows(f"SELECT id FROM {EVENTS} e ORDER BY id")]
    assert len(events) >= 2 * ORDERS and not outbox_settled(shop)  # waiting on Redis: no worker yet
    movements = shop.rows("SELECT id, product_id, quantity, kind FROM stock_movements ORDER BY id")

    _kill_in_flight(processes, env, receiver)
    _expire_leases_of_the_dead(shop)
    _kill_after_answer(processes, env, receiver, len(receiver.requests) + 3)
    _expire_leases_of_the_dead(shop)
    _kill_in_flight(processes, env, receiver)
    _expire_leases_of_the_dead(shop)
    processes.worker(env)

    expected = {f"msg_{event_id}_{sub['id']}" for event_id in events}
    wait_for(lambda: outbox_settled(shop) and {m for m, _ in receiver.processed} == expected and shop.scalar(
        "SELECT count(*) FROM channel_webhook_deliveries WHERE status <> 'delivered'") == 0, 120,
        "every event delivered")

    # every event reached the receiver; the deduplicating consumer processed each one once
    processed = [m for m, _ in receiver.processed]
    assert sorted(processed) == sorted(expected)
    assert all(signed for _, _, signed in receiver.requests)
    assert len(receiver.requests) > len(expected)  # the kills made the worker send some again (at least once)
    assert shop.rows("SELECT event_id, count(*) FROM channel_webhook_deliveries GROUP BY event_id "
                     "HAVING count(*) > 1") == []
    assert shop.scalar("SELECT count(*) FROM channel_webhook_deliveries") == len(events)

    # no charge twice: one payment per order, one journal entry per payment
    payments = shop.rows("SELECT order_id, id FROM payments ORDER BY order_id")
    assert [order_id for order_id, _ in payments] == orders
    entries = shop.rows("SELECT source_id, count(*) FROM accounting_export_entries WHERE kind = 'payment' "
                        "GROUP BY source_id ORDER BY source_id")
    assert entries == [(payment_id, 1) for _, payment_id in payments]
    # no stock moved by the re-runs
    assert shop.rows("SELECT id, product_id, quantity, kind FROM stock_movements ORDER BY id") == movements
    shop.check_invariants()
