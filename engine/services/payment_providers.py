"""The payment provider of an order (a registered plugin's, or the core's manual one)."""

from __future__ import annotations

from engine.errors import Conflict
from engine.models import Order
from engine.plugins import registry


def provider_for(order: Order):
    try:
        return registry().providers[order.payment_provider]
    except KeyError:
        raise Conflict(f"payment provider {order.payment_provider!r} is not enabled",
                       code="provider_disabled") from None
