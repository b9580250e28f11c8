"""channel_webhook: sales channels that push orders in through signed webhooks (generic Standard
Webhooks, Shopify, WooCommerce), and outbound webhooks that tell other systems about every stage.

Settings prefix ``HOOKSHOP_CHANNEL_WEBHOOK_`` (all optional; see the README): ``ALLOW_PRIVATE_TARGETS``,
``TIMEOUT``, ``RETRY_DELAYS``, ``RETRY_JITTER``, ``DISABLE_AFTER_HOURS``, ``TOLERANCE_SECONDS``
(declared in settings.py).
"""

from __future__ import annotations

import functools
import inspect

from engine.plugin_api import SettingsError, as_utc, hookimpl, stage_hookspecs
from plugins.channel_webhook import models, outbound
from plugins.channel_webhook.formats import FORMATS
from plugins.channel_webhook.settings import SETTINGS

__all__ = ["SETTINGS", "models"]  # its tables (its migrations create them); its settings, declared once


@hookimpl
def plugin_setup(app):
    try:
        SETTINGS.load(app.config)
    except SettingsError as exc:
        return str(exc)
    return None


@hookimpl
def register_channels():
    return list(FORMATS)


@hookimpl
def register_blueprints():
    from plugins.channel_webhook import webhooks_api  # noqa: F401  (its routes join the plugin's blueprint)
    from plugins.channel_webhook.admin import admin
    from plugins.channel_webhook.api import blp

    return [blp, admin]


@hookimpl
def admin_screens():
    from plugins.channel_webhook.admin import screens

    return screens()


@hookimpl
def register_commands():
    from plugins.channel_webhook.cli import channels_group, webhooks_group

    return [channels_group, webhooks_group]


@hookimpl
def register_task_kinds():
    """Outbound deliveries are retried by the core's retry queue (the sweeper runs due ones)."""
    return [outbound.task_kind()]


# --------------------------------------------------------------------------- outbound: every stage event


def _iso(value):
    return as_utc(value).isoformat() if value is not None else None


def _order(order) -> dict | None:
    if order is None:
        return None
    return {"id": order.id, "number": order.number, "status": order.status, "payment_status": order.payment_status,
            "channel": order.channel, "external_id": order.external_id, "flags": list(order.flags or []),
            "customer": {"id": order.customer_id, "email": order.email, "name": order.customer_name},
            "shipping_address": order.shipping_address,
            "totals": {"currency": order.currency, "subtotal": order.subtotal, "discount": order.discount_total,
                       "shipping": order.shipping_total, "tax": order.tax_total, "total": order.total,
                       "paid": order.paid_total, "refunded": order.refunded_total},
            "lines": [{"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price,
                       "serials": list(line.serials or [])} for line in order.lines],
            "created_at": _iso(order.created_at)}


def _payment(payment) -> dict | None:
    if payment is None:
        return None
    return {"id": payment.id, "provider": payment.provider, "amount": payment.amount, "currency": payment.currency,
            "status": payment.status, "reference": payment.reference, "refunded_amount": payment.refunded_amount}


def _shipment(shipment) -> dict | None:
    if shipment is None:
        return None
    return {"id": shipment.id, "carrier": shipment.carrier, "service": shipment.service,
            "tracking_number": shipment.tracking_number, "tracking_url": shipment.tracking_url,
            "estimated_delivery": shipment.estimated_delivery.isoformat() if shipment.estimated_delivery else None}


def _return(order_return) -> dict | None:
    if order_return is None:
        return None
    return {"id": order_return.id, "status": order_return.status, "resolution": order_return.resolution,
            "reason": order_return.reason, "lines": order_return.lines, "refund_amount": order_return.refund_amount,
            "replacement_order_id": order_return.replacement_order_id}


def _forward(event, **parts):
    """Record a delivery per matching subscription (committed), then send each, outside any transaction."""

    def data():
        body = dict(event.get("payload") or {})
        for key, (serializer, value) in parts.items():
            body[key] = serializer(value)
        return body

    ids = outbound.record_event(event, data)
    if ids:
        outbound.send(ids)


def _product(product) -> dict | None:
    return {"id": product.id, "sku": product.sku, "name": product.name} if product is not None else None


def _purchase_order(po) -> dict | None:
    if po is None:
        return None
    return {"id": po.id, "sku": po.product.sku, "quantity": po.quantity, "status": po.status, "reason": po.reason}


# How each stage hook's object arguments appear in the webhook's ``data`` (its ``event`` and plain
# values such as ``reason`` or ``available`` are in the event's payload already).
SERIALIZERS = {"order": _order, "payment": _payment, "shipment": _shipment, "order_return": _return,
               "product": _product, "purchase_order": _purchase_order}


def _forwarding_hook(spec):
    """The hookimpl for the stage hook ``spec``: forward the event with the spec's object arguments.

    pluggy reads an implementation's argument names from the function it unwraps to, so the wrapper
    takes the spec's own names (``__wrapped__``) and pluggy passes exactly those."""
    params = tuple(inspect.signature(spec).parameters)
    objects = [name for name in params if name in SERIALIZERS]

    def forward(*args, **kwargs):
        kwargs.update(zip(params, args, strict=False))
        _forward(kwargs["event"], **{name: (SERIALIZERS[name], kwargs.get(name)) for name in objects})

    functools.update_wrapper(forward, spec, updated=())
    forward.__module__ = __name__
    return hookimpl(forward)


# Every stage hook of the core (``outbound.EVENTS``) is forwarded: one loop, no copies.
for _name, _spec in stage_hookspecs().items():
    globals()[_name] = _forwarding_hook(_spec)
del _name, _spec
