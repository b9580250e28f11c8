"""The typed contracts (engine/contracts.py): registered objects are checked at start-up against their
Protocol, the bundled ones conform, and the dataclass values go through the engine end to end."""

import re
from datetime import date

import pytest
from conftest import place, product, receive

from engine import contracts, hookimpl
from engine.app import create_app
from engine.contracts import Carrier, Exporter, PaymentProvider, Rate, SalesChannel, ShipmentInfo
from engine.errors import PluginError
from engine.payments_manual import ManualProvider
from engine.services.payments import PaymentOutcome, RefundOutcome


class Registers:
    """A plugin registering ``items`` with the contract hook ``hook``."""

    def __init__(self, hook, items):
        setattr(self, hook, hookimpl(lambda: items, specname=hook))


def _start(tmp_path, hook, *items, name="acme"):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                       "EXTRA_PLUGINS": [(name, Registers(hook, list(items)))]})


class NoLabelCarrier:  # create_shipment is missing
    name = "acme"
    services = ["standard"]

    def rates(self, order):
        return []


class NoVoidProvider:
    name = "acme_pay"

    def pay(self, order, payment_method=None, data=None):
        return PaymentOutcome("paid", 1, "x")

    def refund(self, payment, amount):
        return RefundOutcome(amount, "r")


class NoParseChannel:
    name = "acme_channel"

    def verify(self, request, secrets):
        return None

    def delivery_id(self, request):
        return None


class NoFormatExporter:
    def export(self, since, until, fh):
        fh.write("")


@pytest.mark.parametrize("hook, item, protocol, member", [
    ("register_carriers", NoLabelCarrier(), "Carrier", "missing method create_shipment(order, service)"),
    ("register_payment_providers", NoVoidProvider(), "PaymentProvider", "missing method void(payment)"),
    ("register_channels", NoParseChannel(), "SalesChannel", "missing method parse(request)"),
    ("register_exporters", NoFormatExporter(), "Exporter", "missing attribute format (str)"),
], ids=["carrier", "provider", "channel", "exporter"])
def test_an_incomplete_object_stops_start_up_naming_the_plugin_and_the_member(tmp_path, hook, item, protocol,
                                                                               member):
    with pytest.raises(PluginError) as info:
        _start(tmp_path, hook, item, name="acme_plugin")
    message = str(info.value)
    assert message.startswith("plugin 'acme_plugin': ") and f"does not satisfy {protocol}: " in message
    assert member in message
    assert isinstance(info.value, contracts.ContractError)


def test_the_message_names_the_object_by_its_key(tmp_path):
    with pytest.raises(PluginError) as info:
        _start(tmp_path, "register_carriers", NoLabelCarrier(), name="acme_carrier")
    assert str(info.value) == ("plugin 'acme_carrier': carrier 'acme' does not satisfy Carrier: "
                               "missing method create_shipment(order, service)")


class TwoArgumentRates(NoLabelCarrier):
    def rates(self, order, currency):  # the engine calls rates(order)
        return []

    def create_shipment(self, order, service):
        return ShipmentInfo("T-1")


class OneArgumentRefund(ManualProvider):
    name = "acme_pay"

    def refund(self, payment):  # the engine calls refund(payment, amount)
        raise AssertionError


def test_a_method_of_the_wrong_arity_stops_start_up(tmp_path):
    with pytest.raises(PluginError) as info:
        _start(tmp_path, "register_carriers", TwoArgumentRates())
    assert re.search(r"carrier 'acme' does not satisfy Carrier: method rates\(order, currency\) cannot be called "
                     r"as rates\(order\)", str(info.value)), str(info.value)
    with pytest.raises(PluginError, match=r"'acme_pay' does not satisfy PaymentProvider: method refund\(payment\) "
                                          r"cannot be called as refund\(payment, amount\)"):
        _start(tmp_path, "register_payment_providers", OneArgumentRefund())


def test_wrong_optional_members_and_attributes_are_named_too(tmp_path):
    class BadLabel(TwoArgumentRates):
        services = "standard"  # a str, not a list of str

        def rates(self, order):
            return []

        def label(self):  # the engine calls label(shipment)
            return b""

    found = contracts.problems(BadLabel(), Carrier)
    assert found == ["services must be a list of str, not 'standard'",
                     "method label() cannot be called as label(shipment) (too many positional arguments) "
                     "(optional, but wrong when present)"]
    assert contracts.problems(type("Nameless", (ManualProvider,), {"name": ""})(), PaymentProvider) == [
        "name must be a non-empty str, not ''"]
    assert contracts.problems(type("Counted", (BadLabel,), {"services": 3, "label": None})(), Carrier) == [
        "services must be a list of str, not 3"]


def test_a_subclass_of_the_protocol_that_forgets_a_method_is_caught(tmp_path):
    class Forgetful(Carrier):  # declares conformance but inherits the Protocol's stub create_shipment
        name, services = "forgetful", ["standard"]

        def rates(self, order):
            return []

    assert contracts.problems(Forgetful(), Carrier) == ["missing method create_shipment(order, service)"]
    with pytest.raises(PluginError, match="carrier 'forgetful' does not satisfy Carrier"):
        _start(tmp_path, "register_carriers", Forgetful())


def test_the_bundled_objects_satisfy_their_protocols(app):
    registry = app.extensions["hookshop"]
    found = {"providers": registry.providers, "carriers": registry.carriers, "channels": registry.channels,
             "exporters": registry.exporters}
    assert "manual" in found["providers"] and "generic" in found["carriers"]
    assert {"generic", "shopify", "woocommerce"} <= set(found["channels"])
    protocols = {"providers": PaymentProvider, "carriers": Carrier, "channels": SalesChannel,
                 "exporters": Exporter}
    for kind, objects in found.items():
        for obj in objects.values():
            assert contracts.problems(obj, protocols[kind]) == [], obj
            assert isinstance(obj, protocols[kind])


def test_the_accounting_exporters_and_stripe_satisfy_their_protocols():
    from plugins.accounting_export.exporters import EXPORTERS
    from plugins.payments_stripe.provider import StripeProvider  # disabled without a secret key: checked here

    assert EXPORTERS and all(contracts.problems(e, Exporter) == [] for e in EXPORTERS.values())
    assert contracts.problems(StripeProvider(), PaymentProvider) == []


class Courier(Carrier):
    """Declares conformance; returns the contract's dataclasses and makes its label on demand."""

    name, services = "courier", ["same_day"]

    def __init__(self):
        self.labelled = []

    def rates(self, order):
        return [Rate(self.name, "same_day", 1500, order.currency, date(2030, 1, 2))]

    def create_shipment(self, order, service):
        return ShipmentInfo(tracking_number=f"CR-{order.number}", estimated_delivery=date(2030, 1, 2), price=1500,
                            tracking_url=f"https://courier.example/{order.number}", data={"depot": "north"})

    def label(self, shipment):
        self.labelled.append(shipment.tracking_number)
        return b"%PDF-1.4 courier " + shipment.tracking_number.encode()


class CourierPlugin:
    def __init__(self):
        self.carrier = Courier()

    @hookimpl
    def register_carriers(self):
        return [self.carrier]


@pytest.fixture
def courier():
    return CourierPlugin()


@pytest.fixture
def app_config(courier):
    return {"EXTRA_PLUGINS": [("courier_plugin", courier)]}


def test_dataclass_values_go_through_the_engine_rates_to_label(api, courier):
    product(api, "MUG")
    receive(api, "MUG", 2)
    order = place(api, [("MUG", 1)])
    oid = order["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    rates = api.get(f"/orders/{oid}/rates").get_json()
    assert {"carrier": "courier", "service": "same_day", "price": 1500, "currency": "EUR",
            "estimated_delivery": "2030-01-02"} in rates
    assert api.post(f"/orders/{oid}/pick", {"scans": ["MUG"]}).status_code == 200
    assert api.post(f"/orders/{oid}/confirm").status_code == 200
    assert api.post(f"/orders/{oid}/pack", {"scans": ["MUG"]}).status_code == 200
    shipped = api.post(f"/orders/{oid}/ship", {"carrier": "courier", "service": "same_day"}).get_json()
    shipment = shipped["shipments"][0]
    assert shipped["status"] == "shipped"
    assert (shipment["carrier"], shipment["service"], shipment["tracking_number"],
            shipment["estimated_delivery"]) == ("courier", "same_day", f"CR-{order['number']}", "2030-01-02")
    label = api.get(f"/shipments/{shipment['id']}/label.pdf")
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    assert label.data == b"%PDF-1.4 courier " + shipment["tracking_number"].encode()
    assert courier.carrier.labelled == [shipment["tracking_number"]]


def test_the_values_are_frozen_and_the_old_import_paths_still_work():
    from engine.services import payments, shipping

    assert shipping.Rate is Rate and shipping.ShipmentInfo is ShipmentInfo
    assert payments.PaymentOutcome is contracts.PaymentOutcome and payments.RefundOutcome is contracts.RefundOutcome
    with pytest.raises(AttributeError):
        ShipmentInfo("T-1").tracking_number = ""  # type: ignore[misc]


@pytest.mark.parametrize("protocol, heading", [(PaymentProvider, "## The payment provider protocol"),
                                               (Carrier, "## The carrier protocol"),
                                               (SalesChannel, "## The sales channel protocol"),
                                               (Exporter, "## The exporter protocol")])
def test_docs_show_every_member_of_each_protocol(protocol, heading):
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    assert f"`engine.contracts.{protocol.__name__}`" in section
    assert f"class {protocol.__name__}(Protocol):" in section
    for member in contracts.members(protocol):
        assert f"| `{member}" in section or f", `{member}`" in section, f"{member} is not in the table"
        assert re.search(rf"\b{member}\b", section.split("```python", 1)[1].split("```", 1)[0]), member
