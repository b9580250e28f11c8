"""HTTP mode: shipments created through a carrier's JSON API, served for real on 127.0.0.1 by a fake
carrier that can be down, fail, be slow, or work."""

from __future__ import annotations

import pytest

from engine.db import db
from engine.models import Shipment
from plugins.carrier_generic.carrier import GenericCarrier

from .conftest import FakeCarrier, address, pdf_text, place_to, ship, shop

CARRIERS = """
[[carriers]]
name = "fastcourier"
label = "Fast Courier"
holidays = "none"

[[carriers.zones]]
name = "eu"
countries = ["DE", "FR"]

[carriers.services.next_day]
transit_days = 1
rates.eu = [{{max_grams = 5000, price = 1500}}]

[carriers.api]
url = "{url}/shipments"
timeout = {timeout}
retries = {retries}
backoff = 0
cancel_url = "{url}/shipments/{{carrier_shipment_id}}"

[carriers.api.headers]
Authorization = "Bearer fc_test_key"

[carriers.api.request]
ref = "{{order_number}}"
product = "NEXT_DAY"
parcel = {{ grams = "{{weight_grams}}", note = "order {{order_number}}, {{weight_grams}} g" }}
to = "{{recipient}}"
from = "{{sender.name}}"

[carriers.api.response]
tracking_number = "tracking.number"
estimated_delivery = "eta"
label_pdf = "label"
price = "cost"
shipment_id = "id"
"""


@pytest.fixture
def settings():
    return {"timeout": 2, "retries": 2}


@pytest.fixture
def database():
    """SQLite only: the carrier API calls do not depend on the database (test_tracking and test_numbers_and_eta
    ship on both)."""
    return "sqlite"


@pytest.fixture
def app_config(tmp_path, fake_carrier, settings):
    path = tmp_path / "carriers.toml"
    path.write_text(CARRIERS.format(url=fake_carrier.url, **settings))
    return {"CARRIER_GENERIC_CONFIG": str(path)}


def packed(api):
    shop(api)
    return place_to(api, [("BOOK", 2)], to=address("FR", "75001", "Paris", "1 Rue de Rivoli"))


def test_the_carrier_api_creates_the_shipment(api, app, fake_carrier):
    fake_carrier.start()
    order = packed(api)
    shipped = ship(api, order["id"], "fastcourier", "next_day")
    shipment = shipped["shipments"][0]
    assert shipped["status"] == "shipped"
    assert (shipment["tracking_number"], shipment["estimated_delivery"], shipment["price"]) == (
        "FC000000001", "2031-03-04", 777)  # as the carrier answered
    assert shipment["tracking_url"] == "/tracking/fastcourier/FC000000001"  # no HOOKSHOP_PUBLIC_URL: a path

    (request,) = fake_carrier.requests
    assert (request["method"], request["path"]) == ("POST", "/shipments")
    assert request["headers"]["Authorization"] == "Bearer fc_test_key"
    assert request["headers"]["Idempotency-Key"] == f"hookshop-fastcourier-{order['id']}-next_day"
    assert request["json"] == {
        "ref": order["number"], "product": "NEXT_DAY",
        "parcel": {"grams": 1800, "note": f"order {order['number']}, 1800 g"},
        "to": {"name": "Ann Example", "line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001",
               "country": "FR", "email": "ann@example.com", "phone": "+49 30 1234567"},
        "from": "hookshop"}
    # the carrier sent no label: the plugin made one with the carrier's tracking number
    text = pdf_text(api.get(f"/shipments/{shipment['id']}/label.pdf").data)
    assert "FC000000001" in text and "FAST COURIER" in text
    with app.app_context():
        stored = db.session.get(Shipment, shipment["id"])
        assert stored.data["mode"] == "http" and stored.data["carrier_shipment_id"] == "shp_1"
        # cancelling at the carrier (not called by the core yet)
        assert GenericCarrier.cancel_shipment(_carrier(app), stored) is True
    assert (fake_carrier.requests[-1]["method"], fake_carrier.requests[-1]["path"]) == ("DELETE", "/shipments/shp_1")


def _carrier(app):
    from engine.plugins import registry

    return registry().carriers["fastcourier"]


def test_a_label_from_the_carrier_is_kept(api, fake_carrier, monkeypatch):
    carrier_label = b"%PDF-1.4\n% the carrier's own label\n%%EOF\n"
    monkeypatch.setattr(FakeCarrier, "LABEL", carrier_label)
    fake_carrier.start()
    shipment = ship(api, packed(api)["id"], "fastcourier", "next_day")["shipments"][0]
    assert api.get(f"/shipments/{shipment['id']}/label.pdf").data == carrier_label


def test_the_carrier_down_then_up(api, fake_carrier):
    order = packed(api)
    # nothing listens on the carrier's port: a clear 502, the order stays packed, nothing shipped
    resp = api.post(f"/orders/{order['id']}/ship", {"carrier": "fastcourier", "service": "next_day"})
    assert resp.status_code == 502 and resp.get_json()["code"] == "provider_unavailable"
    message = resp.get_json()["message"]
    assert message.startswith("carrier fastcourier could not create the shipment: POST "
                              f"{fake_carrier.url}/shipments failed:")
    assert "(after 3 attempts)" in message and message.endswith("the order stays packed, try again")
    after = api.get(f"/orders/{order['id']}").get_json()
    assert after["status"] == "packed" and after["shipments"] == []
    assert after["events"][-1]["kind"] == "shipment_error" and "after 3 attempts" in after["events"][-1]["message"]

    # the carrier is back: the same call ships
    fake_carrier.start()
    shipped = ship(api, order["id"], "fastcourier", "next_day")
    assert shipped["status"] == "shipped" and shipped["shipments"][0]["tracking_number"] == "FC000000001"


def test_server_errors_are_retried_with_the_same_idempotency_key(api, fake_carrier):
    fake_carrier.start()
    fake_carrier.script = [503, 500]
    order = packed(api)
    shipped = ship(api, order["id"], "fastcourier", "next_day")
    assert shipped["shipments"][0]["tracking_number"] == "FC000000001"
    assert len(fake_carrier.requests) == 3
    assert len({r["headers"]["Idempotency-Key"] for r in fake_carrier.requests}) == 1
    assert len(fake_carrier.shipments) == 1


def test_too_many_failures_or_a_refusal_leave_the_order_packed(api, fake_carrier):
    fake_carrier.start()
    order = packed(api)
    fake_carrier.script = [500, 500, 500]
    resp = api.post(f"/orders/{order['id']}/ship", {"carrier": "fastcourier", "service": "next_day"})
    assert resp.status_code == 502
    assert "answered 500: scripted failure 500 (after 3 attempts)" in resp.get_json()["message"]
    # a 4xx is the carrier's final word: not retried
    fake_carrier.script = [422]
    resp = api.post(f"/orders/{order['id']}/ship", {"carrier": "fastcourier", "service": "next_day"})
    assert resp.status_code == 502 and "answered 422: scripted failure 422" in resp.get_json()["message"]
    assert len(fake_carrier.requests) == 4
    order = api.get(f"/orders/{order['id']}").get_json()
    assert order["status"] == "packed" and [e["kind"] for e in order["events"]][-2:] == ["shipment_error"] * 2
    # and then it works
    assert ship(api, order["id"], "fastcourier", "next_day")["status"] == "shipped"


@pytest.mark.parametrize("settings", [{"timeout": 0.2, "retries": 1}])
def test_a_slow_carrier_times_out_and_the_retry_gets_through(api, fake_carrier):
    fake_carrier.start()
    fake_carrier.script = ["slow"]
    order = packed(api)
    shipped = ship(api, order["id"], "fastcourier", "next_day")  # attempt 1 times out, attempt 2 ships
    assert shipped["status"] == "shipped" and len(fake_carrier.requests) == 2
    # the slow attempt also created the shipment at the carrier: the idempotency key made it one
    assert len(fake_carrier.shipments) == 1 and shipped["shipments"][0]["tracking_number"] == "FC000000001"

    fake_carrier.script = ["slow", "slow"]
    other = place_to(api, [("BOOK", 1)], to=address("FR", "75001", "Paris"))
    resp = api.post(f"/orders/{other['id']}/ship", {"carrier": "fastcourier", "service": "next_day"})
    assert resp.status_code == 502 and "timed out after 0.2 s (after 2 attempts)" in resp.get_json()["message"]
