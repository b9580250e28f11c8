"""Money is integer minor units plus an ISO 4217 code: the one money module of hookshop.

The currencies and their minor units come from the ``iso4217`` package, which
ships the ISO 4217 maintenance agency's own table (list one: the active
currencies) and is released again with each amendment. A code is valid for
prices when it is in that table *and* has a minor unit: the funds codes
(``BOV``, ``CLF``, ``USN``, ...) have one and are valid; ``XXX`` (no
currency), ``XTS`` (testing), the precious metals (``XAU``, ``XAG``, ...) and
the units of account (``XDR``, ``XBA``, ...) have none ("N.A.") and are not.

Lookups go through a mapping built once per process (it is on hot paths:
exporters format every posting), and codes are matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

# the largest amount (minor units) the API takes, and the largest total an order may reach: far inside a
# 64-bit column, so that sums (totals, refunds, a customer's total spent) never overflow it
MAX_AMOUNT = 10**12


class UnknownCurrency(ValueError):
    """Not an active ISO 4217 currency with a minor unit."""

    def __init__(self, code):
        super().__init__(f"{code!r} is not an active ISO 4217 currency code with a minor unit (e.g. EUR, JPY, KWD)")
        self.code = code


@cache
def currencies() -> Mapping[str, int]:
    """``{"EUR": 2, "JPY": 0, "KWD": 3, "CLF": 4, ...}``: every code valid for prices, with its exponent."""
    from iso4217 import Currency  # parses the agency's XML table: only when first needed

    return MappingProxyType({c.code: c.exponent for c in Currency if c.exponent is not None})


def _lookup(code: str) -> tuple[str, int] | None:
    table = currencies()
    if not isinstance(code, str):
        return None
    exp = table.get(code)
    if exp is not None:
        return code, exp
    upper = code.strip().upper()
    exp = table.get(upper)
    return (upper, exp) if exp is not None else None


def is_currency(code) -> bool:
    """``True`` for an active ISO 4217 code with a minor unit (any letter case)."""
    return _lookup(code) is not None


def currency_code(code) -> str:
    """The canonical (upper-case) code; ``UnknownCurrency`` when it is not valid for prices."""
    found = _lookup(code)
    if found is None:
        raise UnknownCurrency(code)
    return found[0]


def exponent(currency: str) -> int:
    """The currency's minor unit as a power of ten: ``EUR`` 2, ``JPY`` 0, ``KWD`` 3, ``CLF`` 4.

    ``UnknownCurrency`` for a code that is not valid for prices: guessing 2 is how
    amounts end up off by a factor of 100."""
    found = _lookup(currency)
    if found is None:
        raise UnknownCurrency(currency)
    return found[1]


def amount_text(amount: int, currency: str) -> str:
    """``-1999, "EUR"`` -> ``"-19.99"``; ``500, "JPY"`` -> ``"500"``; ``1500, "KWD"`` -> ``"1.500"`` (exact)."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    if exp == 0:
        return f"{sign}{abs(int(amount))}"
    units, minor = divmod(abs(int(amount)), 10**exp)
    return f"{sign}{units}.{minor:0{exp}d}"


def format_money(amount: int, currency: str) -> str:
    """``1999, "EUR"`` -> ``"19.99 EUR"`` (exact, no floats)."""
    return f"{amount_text(amount, currency)} {currency_code(currency)}"


def percent_of(amount: int, percent: int | float) -> int:
    """``percent`` of ``amount``, rounded half up to the minor unit."""
    return (amount * int(round(percent * 100)) + 5000) // 10000
