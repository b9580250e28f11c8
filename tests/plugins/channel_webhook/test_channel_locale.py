"""The buyer's language from the platforms: Shopify's ``customer_locale``, WPML's ``lang`` (or its
``wpml_language`` meta entry) on WooCommerce, the generic format's ``locale``; an unknown tag is dropped."""

from __future__ import annotations

import copy

from .test_inbound import shop  # noqa: F401  (fixture)
from .test_real_payloads import SHOPIFY_ORDER, WOO_ORDER, eur_shop, send_shopify, send_woo  # noqa: F401


def _locale(api, resp):
    assert resp.status_code == 201, resp.get_json()
    return api.get(f"/orders/{resp.get_json()['id']}").get_json()["locale"]


def test_shopify_customer_locale_is_the_orders_locale(eur_shop):  # noqa: F811
    payload = copy.deepcopy(SHOPIFY_ORDER)
    payload["customer_locale"] = "tr-TR"
    assert _locale(eur_shop, send_shopify(eur_shop, payload)[0]) == "tr-TR"
    payload.update(id=payload["id"] + 1, customer_locale="not a locale", name="#1002")
    assert _locale(eur_shop, send_shopify(eur_shop, payload)[0]) is None


def test_woocommerce_lang_or_wpml_meta_is_the_orders_locale(eur_shop):  # noqa: F811
    payload = copy.deepcopy(WOO_ORDER)
    payload["lang"] = "tr"
    assert _locale(eur_shop, send_woo(eur_shop, payload)[0]) == "tr"
    payload = copy.deepcopy(WOO_ORDER)
    payload.pop("lang", None)
    payload.update(id=payload["id"] + 1, number=str(payload["id"] + 1))
    payload["meta_data"] = [*payload.get("meta_data", []), {"id": 9, "key": "wpml_language", "value": "tr_TR"}]
    assert _locale(eur_shop, send_woo(eur_shop, payload)[0]) == "tr-TR"
