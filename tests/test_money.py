"""One money module, backed by the ISO 4217 table of the ``iso4217`` package: exponents, codes, formatting."""

from __future__ import annotations

import importlib.util

import iso4217
import pytest
from conftest import product

from engine.domain import money
from engine.errors import ValidationFailed
from engine.services import catalog


def test_exponents_of_well_known_currencies():
    assert [money.exponent(c) for c in ("JPY", "KWD", "EUR", "CLF", "ISK", "BHD", "USD")] == [0, 3, 2, 4, 0, 3, 2]
    assert money.exponent("jpy") == 0  # any letter case


def test_every_currency_of_the_iso_table_has_the_tables_exponent():
    """The module is the library's table, nothing hand-written: every active code, and only those."""
    with_unit = {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}
    without_unit = {c.code for c in iso4217.Currency if c.exponent is None}
    assert len(with_unit) > 150 and {"XXX", "XTS", "XAU", "XDR"} <= without_unit
    assert dict(money.currencies()) == with_unit
    for code, exp in with_unit.items():
        assert money.exponent(code) == exp and money.is_currency(code.lower()) and money.currency_code(code) == code
    for code in without_unit:
        assert not money.is_currency(code)
        with pytest.raises(money.UnknownCurrency):
            money.exponent(code)


def test_the_currencies_the_two_old_tables_disagreed_on():
    """The core guessed 2 for these, the accounting plugin knew better; now both read the same table."""
    assert {c: money.exponent(c) for c in ("BIF", "DJF", "GNF", "KMF", "PYG", "RWF", "UGX", "VUV", "XAF", "XOF",
                                           "XPF", "IQD", "LYD")} == {
        "BIF": 0, "DJF": 0, "GNF": 0, "KMF": 0, "PYG": 0, "RWF": 0, "UGX": 0, "VUV": 0, "XAF": 0, "XOF": 0,
        "XPF": 0, "IQD": 3, "LYD": 3}
    assert importlib.util.find_spec("plugins.accounting_export.money") is None  # one module for the project


def test_the_accounting_exporters_format_with_the_core_module():
    from plugins.accounting_export import exporters

    amounts = exporters.Amounts()
    for code in money.currencies():
        assert amounts(-123456, code) == money.amount_text(-123456, code), code


@pytest.mark.parametrize("code", ["XYZ", "XXX", "XTS", "XAU", "XDR", "EU", "EURO", "", None, 978, "HRK"])
def test_unknown_codes_are_refused(code):
    assert not money.is_currency(code)
    with pytest.raises(money.UnknownCurrency):
        money.currency_code(code)


def test_formatting_is_exact_in_each_currencys_decimals():
    assert money.format_money(1999, "EUR") == "19.99 EUR"
    assert money.format_money(-5, "eur") == "-0.05 EUR"
    assert money.format_money(1500, "JPY") == "1500 JPY"
    assert money.format_money(1505, "KWD") == "1.505 KWD"
    assert money.format_money(-7, "BHD") == "-0.007 BHD"
    assert money.format_money(12345, "CLF") == "1.2345 CLF"
    assert money.format_money(10**15 + 1, "EUR") == "10000000000000.01 EUR"  # no float anywhere
    assert money.amount_text(0, "JPY") == "0" and money.amount_text(0, "KWD") == "0.000"


def test_percent_of_rounds_half_up_to_the_minor_unit():
    assert money.percent_of(1999, 10) == 200
    assert money.percent_of(1995, 10) == 200  # 199.5 -> 200
    assert money.percent_of(1994, 10) == 199
    assert money.percent_of(333, 7.5) == 25


# ----------------------------------------------------------------- at the edge


def test_post_products_with_an_unknown_currency_is_422_naming_the_field(api):
    for code in ("XYZ", "XXX", "XAU"):
        resp = api.post("/products", {"sku": "CUP", "name": "Cup", "price": 450, "currency": code})
        body = resp.get_json()
        assert resp.status_code == 422, body
        assert body["code"] == "validation_error" and list(body["errors"]) == ["currency"], body
        assert code in body["errors"]["currency"][0] and "ISO 4217" in body["errors"]["currency"][0]
    assert api.get("/products/CUP").status_code == 404


def test_post_products_accepts_lower_case_and_stores_upper_case(api):
    assert product(api, "CUP", price=450, currency="jpy")["currency"] == "JPY"
    assert api.get("/products/CUP").get_json()["currency"] == "JPY"
    assert product(api, "DATES", price=1505, currency="Kwd")["currency"] == "KWD"


def test_the_service_refuses_an_unknown_currency_too(ctx):
    with pytest.raises(ValidationFailed) as info:
        catalog.create_product({"sku": "CUP", "name": "Cup", "price": 450, "currency": "XYZ"})
    assert list(info.value.errors) == ["currency"]
    assert catalog.create_product({"sku": "CUP", "name": "Cup", "price": 450, "currency": "usd"}).currency == "USD"
