"""channel_webhook against the kit's contracts: its formats as SalesChannelContract, its outbound webhooks
as StageHookContract (both databases)."""

import pytest
from sqlalchemy import text

from engine.testing.contracts import SalesChannelContract, StageHookContract

from .support import LOOPBACK, sample, shopify_headers, standard_headers


class TestGenericFormat(SalesChannelContract):
    @pytest.fixture
    def channel_format(self):
        return "generic"

    @pytest.fixture
    def channel_secret(self):
        return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @pytest.fixture
    def wrong_secret(self):
        return "whsec_c29tZWJvZHktZWxzZS1lbnRpcmVseS1kaWZm"

    @pytest.fixture
    def order_payload(self):
        return {"external_id": "kit-1", "customer": {"email": "kit@example.com", "name": "Kit", "shipping_address": {
            "line1": "1 Road", "city": "Berlin", "postal_code": "10115", "country": "DE"}},
            "lines": [{"sku": "KIT-SKU", "quantity": 1, "unit_price": 1000}]}

    def sign(self, body, secret):
        return standard_headers(secret, body, msg_id="msg_kit_1")


class TestShopifyFormat(SalesChannelContract):
    @pytest.fixture
    def channel_format(self):
        return "shopify"

    @pytest.fixture
    def channel_options(self):
        return {"sku_map": {"457924702": "CASE-BLUE"}}

    @pytest.fixture
    def channel_products(self):
        return ["IPOD2008GREEN", "CASE-BLUE"]

    @pytest.fixture
    def channel_currency(self):
        return "USD"

    @pytest.fixture
    def order_payload(self):
        return sample("shopify_orders_create.json")

    def sign(self, body, secret):
        return shopify_headers(secret, body, webhook_id="kit-delivery-1")


class TestOutboundWebhooks(StageHookContract):
    plugin_name = "channel_webhook"

    @pytest.fixture
    def hookshop_settings(self):
        return {"CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": LOOPBACK, "CHANNEL_WEBHOOK_TIMEOUT": 2}

    def life(self, api, orders):
        # port 9 (discard) refuses: every delivery is recorded and waits for its retry
        resp = api.post("/webhooks/subscriptions", {"url": "http://127.0.0.1:9/hooks", "events": ["*"]})
        assert resp.status_code == 201, resp.get_json()
        super().life(api, orders)

    def observe(self, app):
        from engine.db import db

        with app.app_context():
            rows = db.session.execute(text("SELECT event_id, subscription_id, event_type, webhook_id "
                                           "FROM channel_webhook_deliveries ORDER BY id")).all()
            db.session.remove()
        assert len(rows) >= 8  # the life's stages were recorded
        return [tuple(row) for row in rows]
