"""``locale`` on an order: optional, BCP 47 checked with Babel, stored in one spelling; channels give theirs."""

from __future__ import annotations

import pytest
from conftest import order_body, product, receive

from engine.domain import locales


@pytest.mark.parametrize("given, stored", [("tr", "tr"), ("tr-TR", "tr-TR"), ("tr_tr", "tr-TR"), ("en", "en"),
                                           ("EN-gb", "en-GB"), ("sr-Latn-RS", "sr-Latn-RS")])
def test_normalize_keeps_one_bcp_47_spelling(given, stored):
    assert locales.normalize(given) == stored


@pytest.mark.parametrize("bad", ["xx-YY", "klingon", "", "tr-TR-" + "x" * 40, "en_US.UTF-8", "und", "root",
                                 "x-private"])
def test_normalize_refuses_what_babel_does_not_know(bad):
    with pytest.raises(ValueError):
        locales.normalize(bad)
    assert locales.lenient(bad) is None


def test_an_order_keeps_the_locale_it_was_placed_with(api):
    product(api, "MUG", price=1250)
    receive(api, "MUG", 5)
    placed = api.post("/orders", order_body([("MUG", 1)], locale="tr_TR")).get_json()
    assert placed["locale"] == "tr-TR"
    assert api.get(f"/orders/{placed['id']}").get_json()["locale"] == "tr-TR"
    assert api.post("/orders", order_body([("MUG", 1)])).get_json()["locale"] is None


def test_an_unknown_locale_is_a_422_naming_the_field(api):
    product(api, "MUG", price=1250)
    receive(api, "MUG", 5)
    resp = api.post("/orders", order_body([("MUG", 1)], locale="xx-YY"))
    assert resp.status_code == 422
    assert "locale" in resp.get_json()["errors"]
    assert api.get("/orders").get_json()["items"] == []
