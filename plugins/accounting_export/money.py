"""Minor units to decimal text, exactly (no floats)."""

from __future__ import annotations

# ISO 4217 currencies whose minor unit is not 1/100
EXPONENTS = {"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
             "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
             "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3}


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency.upper(), 2)


def amount_text(amount: int, currency: str) -> str:
    """``-1999, "EUR"`` -> ``"-19.99"``; ``500, "JPY"`` -> ``"500"``."""
    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(int(amount)), 10**exp)
    return f"{sign}{units}.{minor:0{exp}d}" if exp else f"{sign}{units}"


def money_text(amount: int, currency: str) -> str:
    return f"{amount_text(amount, currency)} {currency}"
