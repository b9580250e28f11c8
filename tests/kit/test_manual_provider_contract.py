"""The core's manual provider against the kit's PaymentProviderContract (both databases)."""

import pytest

from engine.testing.contracts import PaymentProviderContract


class TestManualProvider(PaymentProviderContract):
    @pytest.fixture
    def provider(self, hookshop_app):
        from engine.plugins import registry

        with hookshop_app.app_context():
            return registry().providers["manual"]
