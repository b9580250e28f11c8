"""Money is integer minor units plus an ISO 4217 code."""

from __future__ import annotations

# the largest amount (minor units) the API takes, and the largest total an order may reach: far inside a
# 64-bit column, so that sums (totals, refunds, a customer's total spent) never overflow it
MAX_AMOUNT = 10**12

# ISO 4217 exponents that are not 2
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(amount: int, currency: str) -> str:
    """``1999, "EUR"`` -> ``"19.99 EUR"`` (exact, no floats)."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if exp == 0:
        return f"{sign}{amount} {currency}"
    units, minor = divmod(amount, 10**exp)
    return f"{sign}{units}.{minor:0{exp}d} {currency}"


def percent_of(amount: int, percent: int | float) -> int:
    """``percent`` of ``amount``, rounded half up to the minor unit."""
    return (amount * int(round(percent * 100)) + 5000) // 10000
