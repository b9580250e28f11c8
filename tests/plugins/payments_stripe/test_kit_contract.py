"""payments_stripe against the kit's PaymentProviderContract, through the official SDK and localstripe."""

import pytest

from engine.testing.contracts import PaymentProviderContract

from .conftest import SECRET_KEY, WEBHOOK_SECRET


class TestStripeProvider(PaymentProviderContract):
    placement = {"payment_method": "pm_card_visa"}  # localstripe's test card: charged at placement

    @pytest.fixture
    def hookshop_settings(self, localstripe):
        return {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": localstripe.url,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_MAX_NETWORK_RETRIES": 0, "STRIPE_TIMEOUT": 10}

    @pytest.fixture
    def provider(self, hookshop_app):
        from engine.plugins import registry

        with hookshop_app.app_context():
            return registry().providers["stripe"]
