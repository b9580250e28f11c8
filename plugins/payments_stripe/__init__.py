"""payments_stripe: Stripe PaymentIntents, signed webhooks, capture and refunds (official ``stripe`` SDK).

Settings (prefix ``HOOKSHOP_STRIPE_``): ``SECRET_KEY`` (required: without it the
plugin says so at start-up and stays disabled), ``WEBHOOK_SECRET``, ``CAPTURE``
(``automatic`` or ``manual``), ``API_BASE``, and the optional
``PAYMENT_METHOD_TYPES``, ``MAX_NETWORK_RETRIES``, ``TIMEOUT``, declared in ``settings.py``. See README.md.
"""

from __future__ import annotations

import logging

from engine.plugin_api import SettingsError, hookimpl

from . import models  # noqa: F401  (the plugin's table: its migrations create it)
from .provider import NAME, StripeProvider
from .settings import SETTINGS

log = logging.getLogger("hookshop.payments_stripe")
_provider = StripeProvider()
__all__ = ["SETTINGS"]  # the settings declaration: `hookshop plugins` and docs/plugins.md list it


@hookimpl
def plugin_setup(app):
    try:
        SETTINGS.load(app.config)
    except SettingsError as exc:
        return str(exc)
    if not SETTINGS.get("WEBHOOK_SECRET", app.config):
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
