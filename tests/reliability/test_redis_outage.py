"""Redis stopped for a while (a private ``redis-server``): orders are still answered 201, and every stage
hook is delivered once Redis is back.

PostgreSQL only (two server processes and a worker). While Redis is down the servers cannot enqueue: the
events wait in the outbox and the worker's sweeper delivers them (here: the webhooks of every order).
"""

from __future__ import annotations

from reliability.conftest import EVENTS, outbox_settled, place, stock_up, subscribe, wait_for


def _delivered(shop, receiver, sub_id: int) -> set[str]:
    events = {row[0] for row in shop.rows(f"SELECT id FROM {EVENTS} e WHERE hook = 'order_placed'")}
    expected = {f"msg_{event_id}_{sub_id}" for event_id in events}
    return expected if outbox_settled(shop) and {m for m, _ in receiver.processed} == expected else set()


def test_orders_are_answered_while_redis_is_down_and_delivered_after(shop, private_redis, receiver,
                                                                    processes):
    env = shop.env(REDIS_URL=private_redis.url)
    base = processes.serve(shop, env, workers=2)
    worker = processes.worker(env)
    sub = subscribe(base, shop, receiver, events=["order_placed"])
    stock_up(base, shop, "CUP", 30)
    before = [place(base, shop, "CUP")[1]["id"] for _ in range(2)]
    wait_for(lambda: _delivered(shop, receiver, sub["id"]), 180, "the first orders' webhooks")

    private_redis.stop()
    during = []
    for i in range(8):
        status, body = place(base, shop, "CUP", email=f"outage{i}@example.com")
        assert status == 201, body
        during.append(body["id"])
    private_redis.start()

    try:
        expected = wait_for(lambda: _delivered(shop, receiver, sub["id"]), 120, "the webhooks of the outage's orders")
    except AssertionError as exc:  # say where it stopped: the outbox, the deliveries, what arrived
        raise AssertionError(f"{exc}: outbox {shop.rows(f'SELECT id, hook, status, attempts FROM {EVENTS} e')}, "
                             f"deliveries {shop.rows('SELECT event_id, status FROM channel_webhook_deliveries')}, "
                             f"received {receiver.ids()}") from None
    assert len(expected) == len(before) + len(during)
    orders = {body["data"]["order"]["id"] for _, body in receiver.processed}
    assert orders == set(before + during)
    assert shop.scalar("SELECT count(*) FROM channel_webhook_deliveries WHERE status = 'delivered'") == len(expected)
    assert worker.poll() is None, "the worker died while Redis was down"
    shop.check_invariants()
