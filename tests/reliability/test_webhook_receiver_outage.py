"""A webhook receiver that is down, then answers 500, then 200, and later 410: deliveries follow the
channel_webhook plugin's outbound contract (plugins/channel_webhook/README.md, "How it is sent").

PostgreSQL only (two server processes, ``hookshop serve --workers 2``, whose sweepers retry). The contract:
a refused connection and a 5xx are retried after ``RETRY_DELAYS`` (here 1 s each, no jitter), always with
the same ``webhook-id`` and a valid signature, until a 2xx delivers; ``410 Gone`` disables the
subscription at once (``status: disabled`` and the reason in the API), cancels its pending deliveries,
and no later event is recorded or sent for it.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from reliability.conftest import EVENTS, call, place, stock_up, subscribe, wait_for

DELAY = 1.0


def _delivery(shop, order_id: int):
    rows = shop.rows("SELECT d.id, d.status, d.attempts, d.last_status_code, d.webhook_id "
                     f"FROM channel_webhook_deliveries d JOIN {EVENTS} e ON e.id = d.event_id "
                     "WHERE (e.payload->>'order_id')::int = :order_id", order_id=order_id)
    return rows[0] if rows else None


def _placed_hook_done(shop, order_id: int) -> bool:
    return shop.scalar(f"SELECT status FROM {EVENTS} e WHERE hook = 'order_placed' "
                       "AND (payload->>'order_id')::int = :o", o=order_id) == "done"


def test_deliveries_follow_the_outbound_contract(shop, receiver, processes):
    env = shop.env(HOOKSHOP_CHANNEL_WEBHOOK_RETRY_DELAYS=",".join([str(DELAY)] * 12),
                   HOOKSHOP_CHANNEL_WEBHOOK_RETRY_JITTER=0)
    base = processes.serve(shop, env, workers=2)
    sub = subscribe(base, shop, receiver, events=["order_placed"])
    stock_up(base, shop, "PEN", 10)

    receiver.stop()  # down: connections are refused
    first = place(base, shop, "PEN")[1]["id"]
    wait_for(lambda: (d := _delivery(shop, first)) and d[2] >= 1, 120, "the refused attempt")
    assert _delivery(shop, first)[1:4] == ("pending", 1, None)

    receiver.status = 500
    receiver.start()  # the same port, answering 500
    wait_for(lambda: _delivery(shop, first)[2] >= 2, 120, "a retry answered 500")
    assert _delivery(shop, first)[1] == "pending" and _delivery(shop, first)[3] == 500

    receiver.status = 200
    wait_for(lambda: _delivery(shop, first)[1] == "delivered", 120, "the delivery")
    delivery_id, _, attempts, _, msg_id = _delivery(shop, first)
    log = shop.rows("SELECT number, status_code, error IS NOT NULL, at FROM channel_webhook_attempts "
                    "WHERE delivery_id = :d ORDER BY number", d=delivery_id)
    codes = [code for _, code, _, _ in log]
    assert codes[0] is None and log[0][2]  # refused: no status code, an error
    assert codes[-1] == 200 and set(codes[1:-1]) == {500} and len(codes) == attempts >= 3
    assert all(b[3] - a[3] >= timedelta(seconds=DELAY) for a, b in pairwise(log))  # the back-off
    assert receiver.ids() == [msg_id] * (attempts - 1)  # every attempt that arrived: the same webhook-id
    assert msg_id == f"msg_{shop.scalar('SELECT event_id FROM channel_webhook_deliveries')}_{sub['id']}"
    assert all(signed for _, _, signed in receiver.requests)
    assert [body["data"]["order"]["id"] for _, body in receiver.processed] == [first]

    receiver.status = 500
    waiting = place(base, shop, "PEN")[1]["id"]
    wait_for(lambda: (d := _delivery(shop, waiting)) and d[2] >= 1, 120, "a delivery waiting for its retry")
    receiver.status = 410
    gone = place(base, shop, "PEN")[1]["id"]
    status, disabled = wait_for(lambda: (r := call("GET", f"{base}/api/v1/webhooks/subscriptions/{sub['id']}",
                                                   headers=shop.headers()))[1].get("status") == "disabled" and r,
                                120, "the subscription disabled")
    assert status == 200 and "410" in disabled["disabled_reason"]
    wait_for(lambda: _placed_hook_done(shop, gone) and shop.scalar(
        "SELECT count(*) FROM channel_webhook_deliveries WHERE status = 'sending'") == 0, 120, "the sends in flight")
    # The first 410 disabled the subscription. Its delivery failed; the one waiting for a retry was cancelled.
    # (Had a sweeper's retry of the waiting one met the 410 first, that one failed, and the later order's
    # hook found the subscription disabled and recorded nothing.)
    outcomes = (_delivery(shop, waiting)[1::2], _delivery(shop, gone) and _delivery(shop, gone)[1:4])
    assert outcomes in {(("cancelled", 500), ("failed", 1, 410)), (("failed", 410), None)}, outcomes

    seen = len(receiver.requests)
    later = place(base, shop, "PEN")[1]["id"]
    wait_for(lambda: _placed_hook_done(shop, later), 120, "the later order's stage hook")
    assert _delivery(shop, later) is None  # nothing recorded for a disabled subscription
    assert shop.scalar("SELECT count(*) FROM channel_webhook_deliveries WHERE status IN ('pending', 'sending')") == 0
    assert len(receiver.requests) == seen
    shop.check_invariants()
