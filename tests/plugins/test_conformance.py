"""The conformance kit used on the bundled plugins and the core's manual provider."""

import dataclasses

import pytest

from engine import hookimpl
from engine.payments_manual import ManualProvider
from engine.testing import (
    ConformanceError,
    check_carrier,
    check_migrations,
    check_payment_provider,
    check_plugin,
)
from plugins import carrier_generic, notify_email, payments_stripe
from plugins.carrier_generic.carrier import GenericCarrier


def _order(api):
    api.post("/products", {"sku": "BOX", "name": "Box", "price": 1500, "currency": "EUR", "weight_grams": 1200})
    api.post("/stock/receipts", {"sku": "BOX", "quantity": 3})
    resp = api.post("/orders", {"customer": {"email": "kit@example.com", "name": "Kit", "shipping_address": {
        "line1": "1 Road", "city": "Lyon", "postal_code": "69001", "country": "FR"}},
        "lines": [{"sku": "BOX", "quantity": 2}]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def test_bundled_plugins_keep_the_hook_contracts():
    assert check_plugin(carrier_generic) == ["order_documents", "plugin_setup", "register_blueprints",
                                             "register_carriers"]
    assert check_plugin(payments_stripe) == ["order_cancelled", "order_shipped", "plugin_setup",
                                             "register_payment_providers"]
    # one stage hook per row of CUSTOMER_MESSAGES (the core declares every one of them)
    assert check_plugin(notify_email) == ["admin_order_panels", "admin_screens", "order_completed",
                                          "order_confirmed", "order_placed", "order_shipped", "periodic_tasks",
                                          "plugin_setup", "refund_issued", "register_blueprints",
                                          "register_commands", "return_approved", "return_received",
                                          "return_rejected", "return_requested", "stock_low"]


def test_bundled_plugins_models_match_their_migrations(hookshop_app):
    check_migrations(hookshop_app)


def test_unknown_hook_and_wrong_arguments_are_caught():
    class Teleporter:
        @hookimpl
        def order_teleported(self, order):
            return None

    class Greedy:
        @hookimpl
        def order_placed(self, order, customer_secret):
            return None

    with pytest.raises(ConformanceError, match="order_teleported is not a hookshop hook"):
        check_plugin(Teleporter())
    with pytest.raises(ConformanceError, match="customer_secret"):
        check_plugin(Greedy())


def test_generic_carrier_conforms(hookshop_api, hookshop_app):
    order_id = _order(hookshop_api)
    from engine.services.orders import get_order

    with hookshop_app.app_context():
        check_carrier(GenericCarrier(), get_order(order_id))


def test_manual_provider_conforms(hookshop_api, hookshop_app):
    order_id = _order(hookshop_api)
    from engine.services.orders import get_order

    with hookshop_app.app_context():
        check_payment_provider(ManualProvider(), get_order(order_id))


def test_a_broken_carrier_fails_the_kit(hookshop_api, hookshop_app):
    order_id = _order(hookshop_api)

    class NoTracking(GenericCarrier):
        def create_shipment(self, order, service):
            return dataclasses.replace(super().create_shipment(order, service), tracking_number="")

    from engine.services.orders import get_order

    with hookshop_app.app_context(), pytest.raises(ConformanceError, match="tracking number"):
        check_carrier(NoTracking(), get_order(order_id))


def test_a_carrier_quoting_in_no_real_currency_fails_the_kit(hookshop_api, hookshop_app):
    order_id = _order(hookshop_api)

    class Funny(GenericCarrier):
        def rates(self, order):
            return [dataclasses.replace(rate, currency="XYZ") for rate in super().rates(order)]

    from engine.services.orders import get_order

    with hookshop_app.app_context(), pytest.raises(ConformanceError, match="active ISO 4217 code"):
        check_carrier(Funny(), get_order(order_id))
