"""Pure rules of customer profiles: tax ids, languages, the VIP period, and adding statistics up (merge)."""

from __future__ import annotations

import re
from datetime import timedelta

from babel import Locale, UnknownLocaleError
from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

_EU_PREFIXES = {cc.upper() for cc in eu_vat.MEMBER_STATES} | {"EL"}  # Greece's VAT numbers start with EL
_PERIOD = re.compile(r"^P(?:(\d{1,5})W)?(?:(\d{1,5})D)?$")


class InvalidTaxId(ValueError):
    """A tax id whose country's format python-stdnum knows, and which does not follow it."""


def tax_id(value: str, country: str | None) -> tuple[str, bool]:
    """The tax id as stored, and whether its format was checked.

    An EU VAT number (its two-letter prefix names a member state) is checked with ``stdnum.eu.vat``; a
    number without a prefix with the VAT module python-stdnum has for ``country`` (the billing address's);
    either is stored compact (``DE136695976``). A number of a country python-stdnum does not know is kept as
    given (spaces at either end removed) and marked unchecked. ``InvalidTaxId`` when a known format fails."""
    given = value.strip()
    compact = re.sub(r"[\s.\-/]", "", given).upper()
    if compact[:2] in _EU_PREFIXES:
        try:
            return eu_vat.validate(compact), True
        except ValidationError as exc:
            raise InvalidTaxId(f"not a valid {compact[:2]} VAT number: {exc}") from None
    module = get_cc_module(country.lower(), "vat") if country and re.fullmatch(r"[A-Za-z]{2}", country) else None
    if module is None:
        return given, False
    try:
        return module.validate(given), True
    except ValidationError as exc:
        raise InvalidTaxId(f"not a valid tax id of {(country or '').upper()}: {exc}") from None


def locale(value: str) -> str:
    """A Babel locale identifier (``de``, ``de_DE``, ``tr``); ``en-GB`` is taken as ``en_GB``.
    ``ValueError`` for what Babel does not know."""
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"not a language Babel knows: {value!r} ({exc})") from None


def period(value: str) -> timedelta:
    """An ISO 8601 duration in weeks and days (``P365D``, ``P52W``, ``P1W3D``): the VIP rule's window.
    Months and years are refused: their length varies."""
    match = _PERIOD.fullmatch(str(value).strip().upper())
    if not match or not any(match.groups()):
        raise ValueError(f"HOOKSHOP_VIP_ORDERS period must be an ISO 8601 duration in days or weeks such as P365D, "
                         f"not {value!r}")
    weeks, days = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days)


def vip_orders_rule(setting) -> tuple[int, timedelta] | None:
    """``VIP_ORDERS`` (``{"count": 5, "period": "P365D"}``) as (count, window); None when unset."""
    if not setting:
        return None
    count = int(setting.get("count") or 0)
    if count <= 0:
        return None
    return count, period(setting.get("period") or "P365D")


def add_up(maps: list[dict]) -> dict:
    """Per-currency maps added together: ``[{"EUR": 1}, {"EUR": 2, "JPY": 5}]`` -> ``{"EUR": 3, "JPY": 5}``."""
    total: dict[str, int] = {}
    for amounts in maps:
        for currency, amount in (amounts or {}).items():
            total[currency] = total.get(currency, 0) + int(amount)
    return total


def averages(spent: dict, orders: dict) -> dict:
    """What an order brought per currency on average (minor units, rounded down); currencies without
    orders left out."""
    return {currency: int(spent.get(currency, 0)) // int(count) for currency, count in (orders or {}).items()
            if int(count) > 0}
