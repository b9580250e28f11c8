"""The core's in-process domain events (blinker). Plugins do not subscribe here:
they implement stage hooks, which the outbox writer below turns into events.

* ``stage_reached(order, hook=..., payload=..., message=...)`` — a service
  reached a stage. Receivers, all in the same transaction:
  the timeline writer (an ``OrderEvent``), the outbox writer (a task of kind
  ``stage_hook`` on the retry queue) and the customer statistics.
* ``timeline(order, kind=..., message=..., data=...)`` — a note on the order's
  timeline that fires no hook (a failed payment, a carrier scan).
* ``stock_event(product, hook=..., payload=...)`` — ``stock_low`` and
  ``purchase_order_created``: outbox only.
"""

from __future__ import annotations

import uuid

from blinker import Namespace
from flask import current_app
from sqlalchemy import select

from engine.db import buffer_row, db, utcnow
from engine.models import Customer, OrderEvent, RetryTask

_signals = Namespace()
stage_reached = _signals.signal("stage-reached")
timeline = _signals.signal("timeline")
stock_event = _signals.signal("stock-event")


def _outbox(hook: str, payload: dict) -> None:
    """Buffer a stage-hook event: a task of the retry queue's kind ``stage_hook`` (``engine.jobs``);
    ``engine.db`` inserts the buffer in one statement just before commit."""
    now = utcnow()
    row = {"kind": "stage_hook", "key": uuid.uuid4().hex, "payload": {"hook": hook, "payload": payload, "done": []},
           "status": "pending", "attempts": 0, "next_attempt_at": now, "leased_until": None, "last_error": None,
           "created_at": now, "updated_at": now}
    if not current_app.config.get("REDIS_URL"):
        if not _listened(hook):
            # embedded mode, no plugin implements the hook: the relay would only mark the task done
            # in a second write transaction after the commit; record it done right away instead
            row["status"] = "done"
        else:
            # handed to this process's background delivery thread right after the commit: claimed from
            # the start, so the sweeper only takes it over if this process dies before recording it
            from engine.jobs import LEASE

            row.update(status="running", attempts=1, leased_until=now + LEASE)
    buffer_row(RetryTask, row)


def _listened(hook: str) -> bool:
    from engine.plugins import registry

    caller = getattr(registry().pm.hook, hook, None)
    return caller is None or bool(caller.get_hookimpls())


def _add_event(order, kind: str, message: str, data: dict) -> None:
    row = {"order_id": order.id, "kind": kind, "message": message, "data": data, "created_at": utcnow()}
    buffer_row(OrderEvent, row)
    if "events" in order.__dict__:  # keep a loaded timeline current (view-only: never written from here)
        order.events.append(OrderEvent(**row))


@stage_reached.connect
def write_timeline(order, *, hook, payload, message, **_):
    _add_event(order, hook, message, payload)


@stage_reached.connect
def write_outbox(order, *, hook, payload, **_):
    _outbox(hook, {"order_id": order.id, **payload})


@stage_reached.connect
def update_customer_statistics(order, *, hook, payload, **_):
    customer = order.customer
    if customer is None:
        return
    if hook in ("order_cancelled", "refund_issued"):
        # read the row under lock (placement locks it in place_order): concurrent orders lose no update
        customer = db.session.execute(select(Customer).where(Customer.id == customer.id).with_for_update()
                                      .execution_options(populate_existing=True)).scalar_one()
    if hook not in ("order_placed", "order_cancelled", "refund_issued"):
        return
    # spending is kept per currency: 100 EUR and 100 JPY are not 200 of anything
    spent = dict(customer.spent_by_currency or {})
    orders = dict(customer.orders_by_currency or {})
    currency = order.currency
    if hook == "order_placed":
        customer.order_count += 1
        orders[currency] = orders.get(currency, 0) + 1
        placed_at = order.created_at or utcnow()
        customer.first_order_at = customer.first_order_at or placed_at
        customer.last_order_at = placed_at
        spent[currency] = spent.get(currency, 0) + order.total
        from engine.services.customers import vip_threshold as threshold_of

        vip_threshold = threshold_of(currency)
        if vip_threshold and spent[currency] >= vip_threshold:
            customer.vip = True
    elif hook == "order_cancelled":
        customer.order_count = max(0, customer.order_count - 1)
        orders[currency] = max(0, orders.get(currency, 0) - 1)
        spent[currency] = max(0, spent.get(currency, 0) - (order.total - order.refunded_total))
    else:
        spent[currency] = max(0, spent.get(currency, 0) - payload.get("amount", 0))
    customer.spent_by_currency = spent
    customer.orders_by_currency = orders
    customer.currency = customer.currency or currency
    customer.total_spent = spent.get(customer.currency, 0)


@timeline.connect
def write_note(order, *, kind, message, data=None, **_):
    _add_event(order, kind, message, data or {})


@stock_event.connect
def write_stock_outbox(product, *, hook, payload, **_):
    _outbox(hook, {"product_id": product.id, **payload})
