"""Settings (prefix ``HOOKSHOP_ACCOUNTING_``), the chart of accounts and the VAT rates.

Everything is optional. ``load(config)`` parses and checks the settings once per app (``plugin_setup``
keeps the result in ``app.extensions``); a bad value is a sentence that disables the plugin.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import current_app

EXTENSION = "accounting_export"

# role -> account; ``{provider}`` and ``{rate}`` are filled in per payment provider and VAT rate
DEFAULT_ACCOUNTS: dict[str, str] = {
    "receivable": "Assets:Receivables:Customers",
    "clearing": "Assets:Clearing:{provider}",
    "bank": "Assets:Bank:Checking",
    "sales": "Income:Sales",
    "shipping": "Income:Shipping",
    "discounts": "Income:Discounts",
    "refunds": "Income:Refunds",
    "vat": "Liabilities:VAT:{rate}",
    "fees": "Expenses:PaymentFees",
    "inventory": "Assets:Inventory",
    "cogs": "Expenses:COGS",
    "shipping_costs": "Expenses:Shipping",
    "carrier_payable": "Liabilities:Payable:Carriers",
    "goods_received": "Liabilities:Payable:GoodsReceived",
    "inventory_adjustments": "Expenses:InventoryAdjustments",
}
ROLES = tuple(DEFAULT_ACCOUNTS)
REVENUE_ROLES = ("sales", "shipping", "discounts", "refunds")

# a Xero-like chart's codes, for the Xero CSV (override with HOOKSHOP_ACCOUNTING_XERO_CODES)
DEFAULT_XERO_CODES: dict[str, str] = {
    "receivable": "610", "clearing": "612", "bank": "090", "sales": "200", "shipping": "210",
    "discounts": "220", "refunds": "230", "vat": "820", "fees": "404", "inventory": "630", "cogs": "310",
    "shipping_costs": "425", "carrier_payable": "800", "goods_received": "810", "inventory_adjustments": "320",
}

# beancount's rule for account names (ledger and hledger accept them too)
ACCOUNT_RE = re.compile(r"^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z0-9][A-Za-z0-9-]*)+$")


class SettingsError(ValueError):
    pass


@dataclass
class Settings:
    accounts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCOUNTS))
    default_rate: Decimal = Decimal("19")
    shipping_rate: Decimal = Decimal("19")
    rate_overrides: list[tuple[str, Decimal]] = field(default_factory=list)
    sync_url: str | None = None
    sync_secret: str | None = None
    sync_batch: int = 100
    sync_delays: list[int] = field(default_factory=lambda: [10, 60, 300, 1800, 3600, 3600, 3600])
    sync_timeout: float = 10.0
    seller: list[str] = field(default_factory=list)
    receipt_prefix: str = ""
    xero_codes: dict[str, str] = field(default_factory=dict)
    xero_date_format: str = "%d/%m/%Y"
    xero_tax_type: str = "No VAT"

    # ------------------------------------------------------------------ VAT

    def rate_for(self, sku: str) -> Decimal:
        """The VAT rate (percent) of a sku: the first matching override (exact sku or glob), else the default."""
        for pattern, rate in self.rate_overrides:
            if pattern == sku or fnmatch.fnmatchcase(sku, pattern):
                return rate
        return self.default_rate

    # ------------------------------------------------------------------ accounts

    def account(self, role: str, *, provider: str | None = None, rate: str | None = None) -> str:
        if role == "clearing" and provider and f"clearing:{provider}" in self.accounts:
            return self.accounts[f"clearing:{provider}"]
        if role == "vat" and rate is not None and f"vat:{rate}" in self.accounts:
            return self.accounts[f"vat:{rate}"]
        template = self.accounts[role]
        return template.format(provider=account_component(provider or "unknown"),
                               rate=account_component(rate or "0"))

    def xero_code(self, account: str, role: str) -> str:
        return self.xero_codes.get(account) or self.xero_codes.get(role) or DEFAULT_XERO_CODES.get(role, role)

    @property
    def sync_enabled(self) -> bool:
        return bool(self.sync_url and self.sync_secret)


def rate_key(rate: Decimal) -> str:
    """``Decimal("19.00")`` -> ``"19"``, ``Decimal("7.70")`` -> ``"7.7"``: the rate as stored and shown."""
    return format(rate.normalize(), "f")


def account_component(text: str) -> str:
    """A valid account name part: ``"7.7"`` -> ``"7-7"``, ``"manual"`` -> ``"Manual"``, ``"pay_pal"`` -> ``"Pay-Pal"``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", text) if p]
    return "-".join(p[:1].upper() + p[1:] for p in parts) or "X"


def net_of(gross: int, rate: Decimal) -> int:
    """The net part of a tax-inclusive amount, rounded half up to the minor unit."""
    if not rate:
        return gross
    return int((Decimal(gross) * 100 / (100 + rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- parsing


def _mapping(name: str, value) -> dict:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name} must be a JSON object")
        return {str(k): v for k, v in data.items()}
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep:
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name}: {item!r} is not key=value")
        result[key.strip()] = val.strip()
    return result


def _rate(name: str, value) -> Decimal:
    try:
        rate = Decimal(str(value).strip().rstrip("%"))
    except InvalidOperation:
        raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name}: {value!r} is not a percentage") from None
    if not rate.is_finite() or rate < 0 or rate >= 100:
        raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name}: {value!r} must be a percentage from 0 to below 100")
    return Decimal(rate_key(rate))


def _int_list(name: str, value) -> list[int]:
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
    try:
        items = [int(v) for v in value]
    except (TypeError, ValueError):
        raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name} must be a list of seconds") from None
    if not items or any(v < 0 for v in items):
        raise SettingsError(f"HOOKSHOP_ACCOUNTING_{name} must be a non-empty list of seconds")
    return items


def load(config) -> Settings:
    """Parse the ``ACCOUNTING_*`` settings of an app config; raises SettingsError with a sentence."""
    get = config.get
    settings = Settings()
    accounts = dict(DEFAULT_ACCOUNTS)
    for role, account in _mapping("ACCOUNTS", get("ACCOUNTING_ACCOUNTS")).items():
        base = role.split(":", 1)[0]
        if base not in DEFAULT_ACCOUNTS or (":" in role and base not in ("clearing", "vat")):
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_ACCOUNTS: unknown role {role!r}; roles: {', '.join(ROLES)}, "
                                "clearing:<provider>, vat:<rate>")
        accounts[role] = str(account)
    for role, account in accounts.items():
        try:
            sample = account.format(provider="Manual", rate="19") if ":" not in role else account
        except (KeyError, IndexError, ValueError):
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_ACCOUNTS: {account!r} ({role}) may only use the "
                                "placeholders {provider} and {rate}") from None
        if not ACCOUNT_RE.match(sample):
            raise SettingsError(f"HOOKSHOP_ACCOUNTING_ACCOUNTS: {account!r} ({role}) is not a valid account name: "
                                "Assets|Liabilities|Equity|Income|Expenses, then ':'-separated parts that start "
                                "with a capital letter or a digit")
    settings.accounts = accounts
    if get("ACCOUNTING_TAX_RATE") not in (None, ""):
        settings.default_rate = _rate("TAX_RATE", get("ACCOUNTING_TAX_RATE"))
    settings.shipping_rate = settings.default_rate
    if get("ACCOUNTING_SHIPPING_TAX_RATE") not in (None, ""):
        settings.shipping_rate = _rate("SHIPPING_TAX_RATE", get("ACCOUNTING_SHIPPING_TAX_RATE"))
    overrides = _mapping("TAX_RATES", get("ACCOUNTING_TAX_RATES"))
    # exact skus first, then the globs in the order given
    settings.rate_overrides = sorted(((p, _rate("TAX_RATES", r)) for p, r in overrides.items()),
                                     key=lambda item: any(c in item[0] for c in "*?["))
    settings.sync_url = (get("ACCOUNTING_SYNC_URL") or None) and str(get("ACCOUNTING_SYNC_URL"))
    settings.sync_secret = (get("ACCOUNTING_SYNC_SECRET") or None) and str(get("ACCOUNTING_SYNC_SECRET"))
    if settings.sync_url and not settings.sync_url.startswith(("http://", "https://")):
        raise SettingsError("HOOKSHOP_ACCOUNTING_SYNC_URL must be an http:// or https:// URL")
    if get("ACCOUNTING_SYNC_BATCH") not in (None, ""):
        try:
            settings.sync_batch = int(get("ACCOUNTING_SYNC_BATCH"))
        except ValueError:
            raise SettingsError("HOOKSHOP_ACCOUNTING_SYNC_BATCH must be a whole number") from None
        if not 1 <= settings.sync_batch <= 10_000:
            raise SettingsError("HOOKSHOP_ACCOUNTING_SYNC_BATCH must be between 1 and 10000")
    if get("ACCOUNTING_SYNC_RETRY_DELAYS") not in (None, ""):
        settings.sync_delays = _int_list("SYNC_RETRY_DELAYS", get("ACCOUNTING_SYNC_RETRY_DELAYS"))
    if get("ACCOUNTING_SYNC_TIMEOUT") not in (None, ""):
        try:
            settings.sync_timeout = float(get("ACCOUNTING_SYNC_TIMEOUT"))
        except ValueError:
            raise SettingsError("HOOKSHOP_ACCOUNTING_SYNC_TIMEOUT must be a number of seconds") from None
    seller = get("ACCOUNTING_SELLER")
    if seller:
        settings.seller = list(seller) if isinstance(seller, list) else [s.strip() for s in str(seller).split("|")]
    settings.receipt_prefix = str(get("ACCOUNTING_RECEIPT_PREFIX") or "")
    settings.xero_codes = {k: str(v) for k, v in _mapping("XERO_CODES", get("ACCOUNTING_XERO_CODES")).items()}
    if get("ACCOUNTING_XERO_DATE_FORMAT"):
        settings.xero_date_format = str(get("ACCOUNTING_XERO_DATE_FORMAT"))
    if get("ACCOUNTING_XERO_TAX_TYPE"):
        settings.xero_tax_type = str(get("ACCOUNTING_XERO_TAX_TYPE"))
    return settings


def current() -> Settings:
    """The settings of the current app (parsed once, at ``plugin_setup``)."""
    app = current_app._get_current_object()
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = load(app.config)
    return found
