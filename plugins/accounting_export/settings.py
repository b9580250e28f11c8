"""Settings (prefix ``HOOKSHOP_ACCOUNTING_``), the chart of accounts and the VAT rates.

Everything is optional. ``load(config)`` parses and checks the settings once per app (``plugin_setup``
keeps the result in ``app.extensions``); a bad value is a sentence that disables the plugin.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app

from engine.plugin_api import (
    Integer,
    Items,
    Mapping,
    Number,
    Percent,
    PluginSettings,
    Secret,
    Setting,
    SettingsError,
    Text,
    Url,
)

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


# --------------------------------------------------------------------------- the settings, declared once

SETTINGS = PluginSettings("ACCOUNTING", [
    Setting("ACCOUNTS", Mapping(), doc="accounts by role (role=account, a table or JSON; also clearing:<provider>, "
                                       "vat:<rate>); {provider} and {rate} are filled in"),
    Setting("TAX_RATE", Percent(), default=Decimal("19"), doc="the VAT rate (percent) in the prices"),
    Setting("SHIPPING_TAX_RATE", Percent(), default_doc="TAX_RATE", doc="the VAT rate of shipping"),
    Setting("TAX_RATES", Mapping(Percent()), doc="VAT rates of skus (sku or glob=percent): exact skus first, "
                                                 "then the globs in the order given"),
    Setting("SYNC_URL", Url(), doc="the accounting system's endpoint that receives the entries"),
    Setting("SYNC_SECRET", Secret(), doc="the HMAC secret of the sync; without it nothing is sent"),
    Setting("SYNC_BATCH", Integer(min=1, max=10_000), default=100, doc="entries per sync request"),
    Setting("SYNC_RETRY_DELAYS", Items(Integer(min=0), spaces=True, non_empty=True),
            default=[10, 60, 300, 1800, 3600, 3600, 3600], doc="seconds between a failed sync batch's attempts"),
    Setting("SYNC_TIMEOUT", Number(), default=10.0, doc="seconds a sync request may take"),
    Setting("SELLER", Items(separator="|"), doc="the seller's lines on receipts (name|address|VAT id, "
                                                "separated by |)"),
    Setting("RECEIPT_PREFIX", Text(), default="", doc="put before every receipt number"),
    Setting("XERO_CODES", Mapping(Text()), doc="Xero account codes by account or role (the Xero CSV)"),
    Setting("XERO_DATE_FORMAT", Text(), default="%d/%m/%Y", doc="the Xero CSV's date format (strftime)"),
    Setting("XERO_TAX_TYPE", Text(), default="No VAT", doc="the Xero CSV's tax type"),
])


def _accounts(overrides: dict) -> dict[str, str]:
    accounts = dict(DEFAULT_ACCOUNTS)
    for role, account in overrides.items():
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
    return accounts


def load(config) -> Settings:
    """Parse the ``ACCOUNTING_*`` settings of an app config; raises SettingsError with a sentence."""
    values = SETTINGS.load(config)
    return Settings(
        accounts=_accounts(values.accounts or {}), default_rate=values.tax_rate,
        shipping_rate=values.tax_rate if values.shipping_tax_rate is None else values.shipping_tax_rate,
        # exact skus first, then the globs in the order given
        rate_overrides=sorted((values.tax_rates or {}).items(), key=lambda item: any(c in item[0] for c in "*?[")),
        sync_url=values.sync_url, sync_secret=values.sync_secret, sync_batch=values.sync_batch,
        sync_delays=list(values.sync_retry_delays), sync_timeout=values.sync_timeout,
        seller=list(values.seller or []), receipt_prefix=values.receipt_prefix, xero_codes=values.xero_codes or {},
        xero_date_format=values.xero_date_format, xero_tax_type=values.xero_tax_type)


def current() -> Settings:
    """The settings of the current app (parsed once, at ``plugin_setup``)."""
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        found = current_app.extensions[EXTENSION] = load(current_app.config)
    return found
