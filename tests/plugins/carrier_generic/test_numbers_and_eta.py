"""Tracking numbers (check digits, formats, the sequence) and the estimated delivery in business days."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from plugins.carrier_generic import numbers
from plugins.carrier_generic.carrier import GenericCarrier
from plugins.carrier_generic.config import parse
from plugins.carrier_generic.schedule import add_business_days

from .conftest import address, place_to, ship, shop

# ----------------------------------------------------------------------------- check digits


@pytest.mark.parametrize("serial, digit", [
    ("47312482", 9),  # UPU S10 example: AA 473 124 829 GB
    ("12345678", 5),  # EE 123 456 785 GB
    ("00000000", 5),  # 11 - 0 = 11 counts as 5
    ("00000008", 0),  # 11 - 1 = 10 counts as 0
])
def test_s10_check_digit(serial, digit):
    assert numbers.check_digit(serial) == digit


def test_luhn_check_digit():
    assert numbers.luhn_digit("7992739871") == 3
    assert numbers.luhn_digit("424242424242424") == 2  # the test card 4242 4242 4242 4242
    assert numbers.luhn_digit("0") == 0


def test_formats_and_their_validation():
    assert numbers.s10("EE", 12345678, "DE") == "EE123456785DE"
    assert numbers.is_valid_s10("AA473124829GB")
    assert not numbers.is_valid_s10("AA473124828GB")  # wrong check digit
    assert not numbers.is_valid_s10("AA47312482GB")
    with pytest.raises(ValueError, match="8 digits"):
        numbers.s10("EE", 10**8, "DE")
    assert numbers.luhn("PL", 1000, 9) == "PL0000010009"
    assert numbers.is_valid_luhn("PL0000010009", "PL")
    assert not numbers.is_valid_luhn("PL0000010008", "PL")
    # every single-digit typo is caught by both
    for index in range(2, 10):
        typo = "AA473124829GB"[:index] + str((int("AA473124829GB"[index]) + 1) % 10) + "AA473124829GB"[index + 1:]
        assert not numbers.is_valid_s10(typo)


CARRIERS = """
[[carriers]]
name = "postline"
holidays = "none"
[carriers.tracking]
format = "luhn"
prefix = "PL"
digits = 9
start = 1000
[[carriers.zones]]
name = "all"
countries = ["*"]
[carriers.services.standard]
transit_days = 2
rates.all = [{price = 500}]
[carriers.services.express]
transit_days = 1
tracking_prefix = "EX"
rates.all = [{price = 900}]
"""


@pytest.fixture
def app_config(tmp_path):
    path = tmp_path / "carriers.toml"
    path.write_text(CARRIERS)
    return {"CARRIER_GENERIC_CONFIG": str(path)}


def test_tracking_numbers_are_a_sequence_with_a_check_digit(api):
    shop(api)
    generic = [ship(api, place_to(api, [("MUG", 1)])["id"])["shipments"][0]["tracking_number"] for _ in range(3)]
    assert generic == ["HS000000014XX", "HS000000028XX", "HS000000031XX"]
    assert all(numbers.is_valid_s10(n) for n in generic)

    postline = [ship(api, place_to(api, [("MUG", 1)])["id"], "postline", "standard")["shipments"][0]
                ["tracking_number"] for _ in range(2)]
    assert postline == [numbers.luhn("PL", 1000, 9), numbers.luhn("PL", 1001, 9)]
    # a service with its own prefix counts on its own
    express = ship(api, place_to(api, [("MUG", 1)])["id"], "postline", "express")["shipments"][0]
    assert express["tracking_number"] == numbers.luhn("EX", 1000, 9)


def test_concurrent_shipments_never_share_a_number(app):
    carrier = GenericCarrier(parse({"builtin": False, "carriers": [
        {"name": "fast", "zones": [{"name": "all", "countries": ["*"]}],
         "services": {"standard": {"transit_days": 1, "rates": {"all": [{"price": 1}]}}}}]}).carriers[0])
    got, errors = [], []

    def worker():
        try:
            with app.app_context():
                for _ in range(10):
                    got.append(numbers.new_tracking_number(carrier.config, "standard"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == sorted({numbers.s10("HS", n, "XX") for n in range(1, 41)})


# ----------------------------------------------------------------------------- business days


def test_business_days_skip_the_weekend():
    friday, saturday = date(2031, 3, 7), date(2031, 3, 8)
    assert add_business_days(friday, 1) == date(2031, 3, 10)  # Monday
    assert add_business_days(saturday, 1) == date(2031, 3, 10)
    assert add_business_days(friday, 3) == date(2031, 3, 12)
    assert add_business_days(friday, 0) == friday
    assert add_business_days(saturday, 0) == date(2031, 3, 10)  # the next business day
    # a carrier whose weekend is Friday and Saturday delivers on Sunday
    assert add_business_days(date(2031, 3, 6), 1, weekend=(4, 5)) == date(2031, 3, 9)


def test_business_days_skip_the_public_holidays_of_the_country():
    christmas_eve = date(2026, 12, 24)  # Thursday; the 25th (Friday) is a holiday in Germany
    assert add_business_days(christmas_eve, 1) == date(2026, 12, 25)
    assert add_business_days(christmas_eve, 1, "DE") == date(2026, 12, 28)  # the 26th is a Saturday
    maundy_thursday = date(2026, 4, 2)  # Good Friday and Easter Monday are holidays in DE, not in the US
    assert add_business_days(maundy_thursday, 1, "DE") == date(2026, 4, 7)
    assert add_business_days(maundy_thursday, 1, "US") == date(2026, 4, 3)
    # Epiphany (6 January) is a holiday in Bavaria only
    assert add_business_days(date(2026, 1, 5), 1, "DE") == date(2026, 1, 6)
    assert add_business_days(date(2026, 1, 5), 1, "DE", "BY") == date(2026, 1, 7)
    # a country the holidays package does not know: weekends only
    assert add_business_days(christmas_eve, 1, "XX") == date(2026, 12, 25)


def test_the_estimated_delivery_on_rates_shipment_and_timeline(api, monkeypatch):
    monkeypatch.setattr(GenericCarrier, "today", staticmethod(lambda: date(2026, 4, 2)))
    shop(api)
    berlin = place_to(api, [("MUG", 1)])
    new_york = place_to(api, [("MUG", 1)], to=address("US", "10001", "New York"))
    # the built-in carrier counts the destination's holidays
    etas = {r["service"]: r["estimated_delivery"] for r in api.get(f"/orders/{berlin['id']}/rates").get_json()
            if r["carrier"] == "generic"}
    assert etas == {"standard": "2026-04-09", "express": "2026-04-07"}
    etas = {r["service"]: r["estimated_delivery"] for r in api.get(f"/orders/{new_york['id']}/rates").get_json()
            if r["carrier"] == "generic"}
    assert etas == {"standard": "2026-04-07", "express": "2026-04-03"}
    # postline counts none ("holidays = none")
    assert {(r["service"], r["estimated_delivery"]) for r in api.get(f"/orders/{berlin['id']}/rates").get_json()
            if r["carrier"] == "postline"} == {("standard", "2026-04-06"), ("express", "2026-04-03")}

    shipped = ship(api, berlin["id"], "generic", "express")
    assert shipped["shipments"][0]["estimated_delivery"] == "2026-04-07"
    event = next(e for e in shipped["events"] if e["kind"] == "order_shipped")
    assert "expected 2026-04-07" in event["message"]
    assert event["data"]["estimated_delivery"] == "2026-04-07"
