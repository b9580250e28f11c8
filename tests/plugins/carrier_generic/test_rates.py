"""Rates across zones (country and postal-code prefix) and weight bands, the free-shipping threshold,
the carriers file (TOML and JSON) and what a broken file does."""

from __future__ import annotations

import json
import tomllib
from datetime import date

import pytest
from conftest import ApiClient, make_app, new_key

from engine.db import db
from engine.models import Shipment
from plugins.carrier_generic.carrier import GenericCarrier
from plugins.carrier_generic.config import ConfigError, load

from .conftest import address, place_to, ship, shop

CARRIERS = """
[sender]
name = "Example Shop"
line1 = "Sample Street 12"
postal_code = "10115"
city = "Berlin"
country = "DE"

[[carriers]]
name = "postline"
label = "Postline"
currency = "EUR"
holidays = "DE"

[carriers.tracking]
format = "luhn"
prefix = "PL"
digits = 9
start = 1000
url = "https://postline.example/track?n={tracking_number}"

[[carriers.zones]]
name = "berlin"
countries = ["DE"]
postal_prefixes = ["10", "12", "13"]

[[carriers.zones]]
name = "islands"
countries = ["DE"]
postal_prefixes = ["18565", "25938"]

[[carriers.zones]]
name = "domestic"
countries = ["DE"]

[[carriers.zones]]
name = "eu"
countries = ["AT", "FR", "NL"]

[carriers.services.standard]
transit_days = { berlin = 1, domestic = 2, islands = 4, eu = 4 }
free_over = { berlin = 5000, domestic = 5000 }
rates.berlin = [{max_grams = 1000, price = 390}, {max_grams = 5000, price = 590}]
rates.domestic = [{max_grams = 1000, price = 450}, {max_grams = 5000, price = 650}, {max_grams = 31500, price = 1190}]
rates.islands = [{max_grams = 1000, price = 850}, {max_grams = 5000, price = 1250}]
rates.eu = [{max_grams = 1000, price = 990}, {max_grams = 5000, price = 1590}, {price = 3990}]

[carriers.services.express]
transit_days = 1
rates.berlin = [{max_grams = 5000, price = 990}]
rates.domestic = [{max_grams = 5000, price = 1290}]
"""

MONDAY = date(2031, 3, 3)  # no public holiday in DE or FR that week


@pytest.fixture
def app_config(tmp_path):
    path = tmp_path / "carriers.toml"
    path.write_text(CARRIERS)
    return {"CARRIER_GENERIC_CONFIG": str(path)}


@pytest.fixture(autouse=True)
def monday(monkeypatch):
    monkeypatch.setattr(GenericCarrier, "today", staticmethod(lambda: MONDAY))


def rates(api, lines, to):
    oid = place_to(api, lines, status="placed", to=to)["id"]
    resp = api.get(f"/orders/{oid}/rates")
    assert resp.status_code == 200
    return [(r["carrier"], r["service"], r["price"], r["estimated_delivery"]) for r in resp.get_json()]


BERLIN, MUNICH, HIDDENSEE = address(), address(postal_code="80331", city="München"), \
    address(postal_code="18565", city="Vitte")
PARIS, NEW_YORK = address("FR", "75001", "Paris"), address("US", "10001", "New York")


def test_rates_across_zones_and_weight_bands(api):
    shop(api)
    # Berlin (postal prefix 10), 400 g: the berlin zone's first band; the built-in carrier alongside
    assert rates(api, [("MUG", 1)], BERLIN) == [
        ("postline", "standard", 390, "2031-03-04"), ("generic", "standard", 490, "2031-03-06"),
        ("generic", "express", 990, "2031-03-04"), ("postline", "express", 990, "2031-03-04")]
    # Munich: no prefix matches, so the country-wide domestic zone; 1.8 kg is the second band
    assert ("postline", "standard", 650, "2031-03-05") in rates(api, [("BOOK", 2)], MUNICH)
    assert ("postline", "express", 1290, "2031-03-04") in rates(api, [("BOOK", 2)], MUNICH)
    # an island: its own zone, and express has no rate there so it is not offered
    island = [r for r in rates(api, [("MUG", 1)], HIDDENSEE) if r[0] == "postline"]
    assert island == [("postline", "standard", 850, "2031-03-07")]
    # the EU zone: bands by weight, the last one without an upper limit
    assert [r for r in rates(api, [("LAMP", 1)], PARIS) if r[0] == "postline"] == [
        ("postline", "standard", 1590, "2031-03-07")]
    assert [r for r in rates(api, [("ANVIL", 1)], PARIS) if r[0] == "postline"] == [
        ("postline", "standard", 3990, "2031-03-07")]
    # heavier than the domestic zone's last band (31.5 kg): no postline rate at all
    assert ("postline", "standard", 1190, "2031-03-05") in rates(api, [("ANVIL", 1)], MUNICH)
    assert [r for r in rates(api, [("ANVIL", 2)], MUNICH) if r[0] == "postline"] == []
    # the built-in carrier's default table by weight: 60 kg is its last band
    assert ("generic", "standard", 2490, "2031-03-06") in rates(api, [("ANVIL", 2)], MUNICH)
    # a country no zone covers: only the built-in carrier answers
    assert {r[0] for r in rates(api, [("MUG", 1)], NEW_YORK)} == {"generic"}


def test_free_shipping_threshold(api):
    shop(api)
    # 2 lamps: 98.00 EUR of goods, 5 kg: free in Berlin above 50.00, express is never free
    assert [r for r in rates(api, [("LAMP", 2)], BERLIN) if r[0] == "postline"] == [
        ("postline", "standard", 0, "2031-03-04"), ("postline", "express", 990, "2031-03-04")]
    # 4 mugs, 51.60 EUR of goods: free in Munich; the threshold counts goods after the discount,
    # and 10 % off leaves 46.44, below 50.00
    oid = place_to(api, [("MUG", 4)], status="placed", to=MUNICH)["id"]
    prices = {(r["carrier"], r["service"]): r["price"] for r in api.get(f"/orders/{oid}/rates").get_json()}
    assert prices[("postline", "standard")] == 0
    oid = place_to(api, [("MUG", 4)], status="placed", to=MUNICH, coupon="WELCOME10")["id"]
    prices = {(r["carrier"], r["service"]): r["price"] for r in api.get(f"/orders/{oid}/rates").get_json()}
    assert prices[("postline", "standard")] == 650
    # the EU zone has no threshold
    oid = place_to(api, [("LAMP", 2)], status="placed", to=PARIS)["id"]
    assert {(r["carrier"], r["price"]) for r in api.get(f"/orders/{oid}/rates").get_json()} >= {("postline", 1590)}


def test_shipping_uses_the_quote_and_refuses_what_the_carrier_does_not_take(api, app):
    shop(api)
    order = place_to(api, [("LAMP", 2)], to=BERLIN)
    shipped = ship(api, order["id"], "postline", "standard")
    shipment = shipped["shipments"][0]
    # the customer ships free; the shipment's price is what the shop pays the carrier
    assert (shipment["carrier"], shipment["service"], shipment["price"]) == ("postline", "standard", 590)
    with app.app_context():
        assert db.session.get(Shipment, shipment["id"]).data["rate_price"] == 0
        assert db.session.get(Shipment, shipment["id"]).data["free_shipping"] is True
    assert shipment["estimated_delivery"] == "2031-03-04"
    assert shipment["tracking_url"] == f"https://postline.example/track?n={shipment['tracking_number']}"

    # no zone for the address: a 422 naming the carrier, the order stays packed
    us = place_to(api, [("MUG", 1)], to=NEW_YORK)
    resp = api.post(f"/orders/{us['id']}/ship", {"carrier": "postline", "service": "standard"})
    assert resp.status_code == 422 and "does not deliver to US 10001" in resp.get_json()["message"]
    assert "carrier" in resp.get_json()["errors"]
    # a service with no rate for the zone (express to an island) or too heavy: 422 on service
    island = place_to(api, [("MUG", 1)], to=HIDDENSEE)
    resp = api.post(f"/orders/{island['id']}/ship", {"carrier": "postline", "service": "express"})
    assert resp.status_code == 422 and "service" in resp.get_json()["errors"]
    heavy = place_to(api, [("ANVIL", 2)], to=MUNICH)
    resp = api.post(f"/orders/{heavy['id']}/ship", {"carrier": "postline", "service": "standard"})
    assert resp.status_code == 422 and "60000 g" in resp.get_json()["message"]
    for oid in (us["id"], island["id"], heavy["id"]):
        order = api.get(f"/orders/{oid}").get_json()
        assert order["status"] == "packed" and order["shipments"] == []
    # the built-in carrier still ships them
    assert ship(api, us["id"], "generic", "express")["status"] == "shipped"


def test_the_same_carriers_file_in_json(tmp_path):
    doc = tomllib.loads(CARRIERS)
    path = tmp_path / "carriers.json"
    path.write_text(json.dumps(doc))
    settings = load({"CARRIER_GENERIC_CONFIG": str(path)})
    assert [c.name for c in settings.carriers] == ["generic", "postline"]
    postline = settings.carriers[1]
    assert [z.name for z in postline.zones] == ["berlin", "islands", "domestic", "eu"]
    assert postline.zone_for({"country": "DE", "postal_code": "13 351"}).name == "berlin"
    assert postline.zone_for({"country": "de", "postal_code": "01067"}).name == "domestic"
    assert postline.zone_for({"country": "AT", "postal_code": "1010"}).name == "eu"
    assert postline.zone_for({"country": "US", "postal_code": "10001"}) is None
    assert postline.sender["city"] == "Berlin"
    assert postline.currency == "EUR"
    doc["carriers"][0]["currency"] = "eur"  # any letter case; kept upper-case, as orders have it
    path.write_text(json.dumps(doc))
    assert load({"CARRIER_GENERIC_CONFIG": str(path)}).carriers[1].currency == "EUR"
    doc["carriers"][0]["currency"] = "EUR"
    # builtin = false keeps only the file's carriers
    doc["builtin"] = False
    path.write_text(json.dumps(doc))
    assert [c.name for c in load({"CARRIER_GENERIC_CONFIG": str(path)}).carriers] == ["postline"]


@pytest.mark.parametrize("change, message", [
    (lambda d: d["carriers"][0]["services"]["standard"]["rates"].update(moon=[{"price": 1}]),
     "carriers.0.services.standard.rates: unknown zones: moon"),
    (lambda d: d["carriers"][0]["services"]["standard"]["rates"]["eu"].reverse(),
     "eu: bands must grow by max_grams"),
    (lambda d: d["carriers"][0]["services"]["express"]["rates"].update(eu=[{"max_grams": 1, "price": 1}]) or
     d["carriers"][0]["services"]["express"].update(transit_days={"berlin": 1}),
     "no transit days for zones: domestic, eu"),
    (lambda d: d["carriers"][0].update(holidays="Atlantis"), "carriers.0.holidays: unknown country"),
    (lambda d: d["carriers"][0]["zones"][0].update(countries=["Germany"]), "an ISO 3166-1 alpha-2 code or *"),
    (lambda d: d["carriers"][0].update(colour="red"), "carriers.0.colour: Unknown field."),
    (lambda d: d["carriers"][0]["tracking"].update(format="s10", prefix="P1"), "2 capital letters for the s10 format"),
    (lambda d: d["carriers"][0]["tracking"].update(url="https://x.example/"), "must contain {tracking_number}"),
    (lambda d: d["carriers"].append(dict(d["carriers"][0])), "carrier names must be unique"),
    (lambda d: d["carriers"][0].update(currency="XYZ"), "carriers.0.currency: 'XYZ' is not an active ISO 4217"),
    (lambda d: d["carriers"][0].update(currency="XTS"), "carriers.0.currency: 'XTS' is not an active ISO 4217"),
])
def test_a_broken_carriers_file_is_reported_field_by_field(tmp_path, change, message):
    doc = tomllib.loads(CARRIERS)
    change(doc)
    path = tmp_path / "carriers.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        load({"CARRIER_GENERIC_CONFIG": str(path)})
    assert message in str(info.value)


def test_a_broken_file_keeps_the_plugin_off_and_the_engine_up(database, tmp_path, request):
    path = tmp_path / "carriers.toml"
    path.write_text(CARRIERS.replace("price = 390", "price = -390"))
    app = make_app(database, tmp_path, request, CARRIER_GENERIC_CONFIG=str(path))
    api = ApiClient(app.test_client(), new_key(app))
    plugin = {p["name"]: p for p in api.get("/plugins").get_json()}["carrier_generic"]
    assert plugin["enabled"] is False
    assert plugin["reason"].startswith("HOOKSHOP_CARRIER_GENERIC_CONFIG: ")
    assert "carriers.0.services.standard.rates.berlin.0.price" in plugin["reason"]
    shop(api)
    oid = place_to(api, [("MUG", 1)], status="placed")["id"]
    assert api.get(f"/orders/{oid}/rates").get_json() == []

    (tmp_path / "other").mkdir()
    missing = make_app(database, tmp_path / "other", request, CARRIER_GENERIC_CONFIG=str(tmp_path / "nope.toml"))
    with missing.app_context():
        from engine.plugins import registry

        info = {i.name: i for i in registry().infos}["carrier_generic"]
        assert not info.enabled and "cannot read the carriers file" in info.reason


def test_no_configuration_gives_the_builtin_carrier():
    settings = load({})
    (generic,) = settings.carriers
    assert generic.name == "generic" and list(generic.services) == ["standard", "express"]
    assert generic.holidays == "destination" and generic.tracking.format == "s10"


def test_the_readme_examples_are_valid_carriers_files():
    import re
    from pathlib import Path

    import plugins.carrier_generic as package

    readme = (Path(package.__file__).parent / "README.md").read_text()
    full, api = re.findall(r"```toml\n(.*?)```", readme, re.S)
    settings = load({"CARRIER_GENERIC_CONFIG": tomllib.loads(full)})  # a table from HOOKSHOP_CONFIG works too
    postline = settings.carriers[1]
    assert postline.zone_for({"country": "DE", "postal_code": "22 769"}).name == "city"
    assert postline.holidays == "DE" and postline.services["express"].tracking_prefix == "EE"
    minimal = ("[[carriers]]\nname = 'fast'\nzones = [{name = 'all', countries = ['*']}]\n"
               "services.next_day = {transit_days = 1, rates.all = [{price = 1500}]}\n")
    fast = load({"CARRIER_GENERIC_CONFIG": tomllib.loads(minimal + api)}).carriers[1]
    assert fast.api.response["tracking_number"] == "tracking.number" and fast.api.retries == 2
