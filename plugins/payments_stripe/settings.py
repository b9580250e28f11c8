"""The settings of payments_stripe (``HOOKSHOP_STRIPE_*``), declared once (engine/plugin_settings.py).

They are read at call time (``SETTINGS.get``), so a test or an operator changing ``app.config`` is
followed at once; ``plugin_setup`` checks them all at start-up.
"""

from __future__ import annotations

from engine.plugin_api import Choice, Integer, Items, Number, PluginSettings, Secret, Setting, Url


def _secret_key(key: str) -> str | None:
    if not key.startswith(("sk_", "rk_")):
        return "a secret or restricted key (sk_... or rk_...); a publishable key (pk_...) cannot create payments"
    return None


SETTINGS = PluginSettings("STRIPE", [
    Setting("SECRET_KEY", Secret(check=_secret_key), required=True,
            doc="the secret or restricted API key (sk_... or rk_...); without it the plugin stays off"),
    Setting("WEBHOOK_SECRET", Items(Secret()),
            doc="the webhook endpoint's signing secret (whsec_...), several comma separated while one is "
                "rolled; without it the webhook refuses every event"),
    Setting("CAPTURE", Choice("automatic", "manual"), default="automatic",
            doc="manual: authorise at payment, capture when the order ships"),
    Setting("API_BASE", Url(), doc="another API base URL (e.g. localstripe); default Stripe's own"),
    Setting("PAYMENT_METHOD_TYPES", Items(), default=["card"], doc="the PaymentIntents' payment method types"),
    Setting("MAX_NETWORK_RETRIES", Integer(min=0), default=2,
            doc="retries of a request after a network error or a 429 (same idempotency key)"),
    Setting("TIMEOUT", Number(min=0), default=30.0, doc="seconds a request to Stripe may take"),
])
