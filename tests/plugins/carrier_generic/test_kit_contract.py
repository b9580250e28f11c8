"""carrier_generic against the kit's CarrierContract (both databases)."""

import pytest

from engine.testing.contracts import CarrierContract


class TestGenericCarrier(CarrierContract):
    @pytest.fixture
    def hookshop_settings(self):
        return {"CARRIER_GENERIC_TRACKING_SECRET": "whsec_Y2Fycmllci1nZW5lcmljLWtpdC10ZXN0LWtleQ=="}

    @pytest.fixture
    def carrier(self, hookshop_app):
        from engine.plugins import registry

        with hookshop_app.app_context():
            return registry().carriers["generic"]
