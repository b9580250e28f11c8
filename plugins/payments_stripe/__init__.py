"""payments_stripe: Stripe PaymentIntents and signed webhooks (issue #3 builds it out).

Settings prefix ``HOOKSHOP_STRIPE_``. Until ``HOOKSHOP_STRIPE_SECRET_KEY`` is
set the plugin says so once at start-up and stays disabled.
"""

from engine import hookimpl


@hookimpl
def plugin_setup(app):
    if not app.config.get("STRIPE_SECRET_KEY"):
        return "HOOKSHOP_STRIPE_SECRET_KEY is not set"
    return "the Stripe provider is not built yet (issue #3)"
