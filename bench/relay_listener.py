"""The plugin ``bench/relay_outbox.py`` registers in its server and worker (``HOOKSHOP_EXTRA_PLUGINS``).

It listens to ``order_placed`` like a small integration would: it reads the order and its lines (what an
ERP push would serialise) and does nothing else, so the bench measures the relay, not a receiver."""

from __future__ import annotations

from engine import hookimpl


class OrderListener:
    @hookimpl
    def order_placed(self, order, event):
        return (order.id, order.total, [(line.sku, line.quantity) for line in order.lines], event["id"])


listener = OrderListener()
