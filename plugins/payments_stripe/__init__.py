"""payments_stripe: Stripe PaymentIntents, signed webhooks, capture and refunds (official ``stripe`` SDK).

Settings (prefix ``HOOKSHOP_STRIPE_``): ``SECRET_KEY`` (required: without it the
plugin says so at start-up and stays disabled), ``WEBHOOK_SECRET``, ``CAPTURE``
(``automatic`` or ``manual``), ``API_BASE``, and the optional
``PAYMENT_METHOD_TYPES``, ``MAX_NETWORK_RETRIES``, ``TIMEOUT``. See README.md.
"""

from __future__ import annotations

import logging

from engine.plugin_api import hookimpl

from . import models  # noqa: F401  (the plugin's table: its migrations create it)
from .provider import NAME, StripeProvider

log = logging.getLogger("hookshop.payments_stripe")
_provider = StripeProvider()


@hookimpl
def plugin_setup(app):
    key = app.config.get("STRIPE_SECRET_KEY")
    if not key:
        return "HOOKSHOP_STRIPE_SECRET_KEY is not set"
    if not str(key).startswith(("sk_", "rk_")):
        return ("HOOKSHOP_STRIPE_SECRET_KEY must be a secret or restricted key (sk_... or rk_...); "
                "a publishable key (pk_...) cannot create payments")
    capture = str(app.config.get("STRIPE_CAPTURE") or "automatic").lower()
    if capture not in ("automatic", "manual"):
        return f"HOOKSHOP_STRIPE_CAPTURE must be automatic or manual, not {capture!r}"
    for name, kind in (("STRIPE_MAX_NETWORK_RETRIES", int), ("STRIPE_TIMEOUT", float)):
        if app.config.get(name) is not None:
            try:
                if kind(app.config[name]) < 0:
                    raise ValueError
            except (TypeError, ValueError):
                return f"HOOKSHOP_{name} must be a number of at least 0, not {app.config[name]!r}"
    if not app.config.get("STRIPE_WEBHOOK_SECRET"):
        log.warning("HOOKSHOP_STRIPE_WEBHOOK_SECRET is not set: POST /api/v1/payments/stripe/webhook refuses "
                    "every event (400) until it is; payments confirmed server-side still work")
    return None


@hookimpl
def register_payment_providers():
    return [_provider]


@hookimpl
def order_shipped(order):
    """Manual capture: the authorised money is captured when the order ships (idempotent)."""
    if order.payment_provider != NAME:
        return
    for payment in list(order.payments):
        if payment.provider == NAME and payment.status == "authorized":
            _provider.capture(payment)


@hookimpl
def order_cancelled(order):
    """The core voided the pending and authorised payments; cancel any other intent still open (a declined one)."""
    if order.payment_provider != NAME:
        return
    _provider.cancel_open_intents(order.id)
