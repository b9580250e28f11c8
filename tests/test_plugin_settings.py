"""engine/plugin_settings.py: a plugin declares its settings once; `hookshop plugins` and GET /plugins list
them (secrets masked, missing required ones named); docs/plugins.md shows the same declaration. And the
plugins' own hookspecs (hookshop_addhooks)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import ApiClient, make_app, new_key

import plugins.accounting_export as accounting_export
import plugins.carrier_generic as carrier_generic
import plugins.channel_webhook as channel_webhook
import plugins.crm_salesforce as crm_salesforce
import plugins.notify_email as notify_email
import plugins.payments_stripe as payments_stripe
from engine import hookimpl, hookspec
from engine.app import create_app
from engine.errors import PluginError
from engine.plugin_settings import (
    MASK,
    Choice,
    Flag,
    Integer,
    Items,
    Mapping,
    Number,
    Percent,
    PluginSettings,
    Secret,
    Setting,
    SettingsError,
    Url,
)
from engine.testing import ConformanceError, check_plugin

BUNDLED = {"accounting_export": accounting_export, "carrier_generic": carrier_generic,
           "channel_webhook": channel_webhook, "crm_salesforce": crm_salesforce, "notify_email": notify_email,
           "payments_stripe": payments_stripe}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

B2B = PluginSettings("B2B", [
    Setting("TOKEN", Secret(), required=True, doc="the ERP's token"),
    Setting("DOMAINS", Items(), default=[], doc="domains"),
    Setting("TIMEOUT", Number(min=0), default=10.0, doc="seconds"),
    Setting("BATCH", Integer(min=1, max=100), default=20, doc="rows per call"),
    Setting("MODE", Choice("push", "pull"), default="push", doc="how"),
    Setting("STRICT", Flag(), default=False, doc="refuse unknown skus"),
    Setting("RATE", Percent(), default=Decimal("19"), doc="VAT"),
    Setting("URL", Url(), doc="the ERP"),
    Setting("CODES", Mapping(Integer()), doc="codes"),
    Setting("DELAYS", Items(Number(min=0), spaces=True), default=[1.0], doc="retries"),
])


# ------------------------------------------------------------------ the declaration


def test_values_come_from_the_config_with_their_kinds_and_defaults():
    # as engine/config.py leaves them: environment strings, TOML values as they are
    values = B2B.load({"B2B_TOKEN": "t0k", "B2B_DOMAINS": "acme.example, globex.example", "B2B_TIMEOUT": "2.5",
                       "B2B_BATCH": 50, "B2B_MODE": "PULL", "B2B_STRICT": "yes", "B2B_RATE": "7.70%",
                       "B2B_CODES": "a=1,b=2", "B2B_DELAYS": "1 2, 3", "OTHER": "ignored"})
    assert values.token == "t0k" and values.domains == ["acme.example", "globex.example"]
    assert (values.timeout, values.batch, values.mode, values.strict) == (2.5, 50, "pull", True)
    assert values.rate == Decimal("7.7") and values.codes == {"a": 1, "b": 2} and values.delays == [1.0, 2.0, 3.0]
    assert values.url is None  # unset, no default
    defaults = B2B.load({"B2B_TOKEN": "x", "B2B_TIMEOUT": "", "B2B_CODES": {"a": "3"}})  # "" is unset
    assert (defaults.timeout, defaults.batch, defaults.mode, defaults.codes) == (10.0, 20, "push", {"a": 3})


def test_errors_name_the_setting_the_value_and_what_it_must_be_and_never_show_a_secret():
    with pytest.raises(SettingsError) as info:
        B2B.load({"B2B_BATCH": "lots", "B2B_MODE": "both", "B2B_URL": "ftp://erp"})
    message = str(info.value)
    assert "HOOKSHOP_B2B_TOKEN is not set" in message
    assert "HOOKSHOP_B2B_BATCH must be a whole number from 1 to 100, not 'lots'" in message
    assert "HOOKSHOP_B2B_MODE must be push or pull, not 'both'" in message
    assert "HOOKSHOP_B2B_URL must be an http:// or https:// URL, not 'ftp://erp'" in message
    checked = PluginSettings("X", [Setting("KEY", Secret(check=lambda v: None if v.startswith("sk_") else "sk_..."))])
    with pytest.raises(SettingsError) as info:
        checked.load({"X_KEY": "pk_live_very_secret"})
    assert str(info.value) == "HOOKSHOP_X_KEY must be sk_..." and "very_secret" not in str(info.value)
    with pytest.raises(SettingsError, match="HOOKSHOP_B2B_TIMEOUT must be a number of at least 0, not '-1'"):
        B2B.get("TIMEOUT", {"B2B_TIMEOUT": "-1"})


def test_describe_masks_secrets_and_lists_the_missing_required_ones():
    rows = {row["name"]: row for row in B2B.describe({"B2B_TOKEN": "s3cr3t", "B2B_BATCH": "0"})}
    assert rows["HOOKSHOP_B2B_TOKEN"]["value"] == MASK and rows["HOOKSHOP_B2B_TOKEN"]["type"] == "secret"
    assert rows["HOOKSHOP_B2B_BATCH"]["problem"].startswith("HOOKSHOP_B2B_BATCH must be a whole number")
    assert rows["HOOKSHOP_B2B_TIMEOUT"] == {"name": "HOOKSHOP_B2B_TIMEOUT", "type": "float", "required": False,
                                            "doc": "seconds", "default": "10.0", "set": False, "value": None,
                                            "problem": None}
    assert B2B.missing({}) == ["HOOKSHOP_B2B_TOKEN"] and B2B.missing({"B2B_TOKEN": "x"}) == []


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_docs_list_each_plugins_settings_from_its_declaration(name):
    """docs/plugins.md shows each bundled plugin's SETTINGS.markdown() in its section; regenerate the
    table from the declaration when this fails (the message has it)."""
    table = BUNDLED[name].SETTINGS.markdown()
    section = DOCS.read_text().split(f"## Plugin: {name}\n", 1)[1].split("\n## ", 1)[0]
    assert table in section, f"docs/plugins.md, section 'Plugin: {name}', should have:\n{table}"


def test_every_bundled_plugin_declares_its_settings_and_reads_no_other_of_its_prefix():
    for name, plugin in BUNDLED.items():
        declared = plugin.SETTINGS
        assert isinstance(declared, PluginSettings) and declared.settings, name
        keys = {declared.key(n) for n in declared.settings}
        source = "\n".join(p.read_text() for p in Path(plugin.__file__).parent.glob("*.py"))
        read = set(re.findall(r"config(?:\.get\(|\[)\"([A-Z_]+)\"", source))
        core = {"PUBLIC_URL", "FOLLOWUP_AFTER", "FOLLOWUP_DAYS", "PAYMENT_INSTRUCTIONS", "CARRIER_GENERIC_PUBLIC_URL"}
        assert read - keys - core == set(), f"{name} reads settings it does not declare"


def test_the_plugins_parse_through_their_declaration_as_before():
    stripe = payments_stripe.plugin_setup
    config = {"STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_TIMEOUT": "soon"}
    assert stripe(app=type("App", (), {"config": config})) == \
        "HOOKSHOP_STRIPE_TIMEOUT must be a number of at least 0, not 'soon'"
    from plugins.accounting_export.settings import load as accounting

    settings = accounting({"ACCOUNTING_TAX_RATES": "BOOK-*=7,BOOK-1=0", "ACCOUNTING_SHIPPING_TAX_RATE": "7",
                           "ACCOUNTING_SELLER": "Shop|1 Road"})
    assert settings.rate_overrides == [("BOOK-1", Decimal("0")), ("BOOK-*", Decimal("7"))]
    assert (settings.default_rate, settings.shipping_rate, settings.seller) == (Decimal("19"), Decimal("7"),
                                                                               ["Shop", "1 Road"])
    from plugins.notify_email.settings import load as notify

    mail = notify({"SMTP_TLS": "ssl", "SHOP_NAME": "Mugs", "WAREHOUSE_EMAIL": "a@example.com, Bo <b@example.com>"})
    assert (mail.port, mail.mail_from, mail.support_email) == (465, "Mugs <no-reply@localhost>", "no-reply@localhost")
    assert mail.warehouse_email == ["a@example.com", "Bo <b@example.com>"]
    with pytest.raises(SettingsError, match="HOOKSHOP_SUPPORT_EMAIL must be an e-mail address"):
        notify({"SUPPORT_EMAIL": "nobody"})


# ------------------------------------------------------------------ hookshop plugins and GET /plugins

SECRETS = {"STRIPE_WEBHOOK_SECRET": "whsec_do_not_print", "SMTP_PASSWORD": "hunter2-do-not-print",
           "CHANNEL_WEBHOOK_TIMEOUT": "soon"}


def test_cli_plugins_shows_settings_masked_and_the_missing_ones(database, tmp_path, request):
    app = make_app(database, tmp_path, request, **SECRETS)
    out = app.test_cli_runner().invoke(args=["plugins"]).output
    assert "do-not-print" not in out and "do_not_print" not in out
    stripe = out.split("\npayments_stripe ", 1)[1]
    assert "    setting HOOKSHOP_STRIPE_SECRET_KEY = (required, not set)" in stripe
    assert "    setting HOOKSHOP_STRIPE_WEBHOOK_SECRET = ********" in stripe
    assert "    setting HOOKSHOP_STRIPE_CAPTURE = (default: automatic)" in stripe
    assert "    missing: HOOKSHOP_STRIPE_SECRET_KEY" in stripe
    assert "    setting HOOKSHOP_SMTP_PASSWORD = ********" in out
    assert "    setting HOOKSHOP_CHANNEL_WEBHOOK_TIMEOUT = soon  (not valid: HOOKSHOP_CHANNEL_WEBHOOK_TIMEOUT must " \
           "be a number of at least 0, not 'soon')" in out
    assert "    setting HOOKSHOP_CARRIER_GENERIC_CONFIG = (unset)" in out


def test_api_plugins_lists_settings_masked_and_the_missing_ones(database, tmp_path, request):
    app = make_app(database, tmp_path, request, **SECRETS)
    resp = ApiClient(app.test_client(), new_key(app)).get("/plugins")
    assert resp.status_code == 200 and "do_not_print" not in resp.get_data(as_text=True)
    plugins = {p["name"]: p for p in resp.get_json()}
    stripe = plugins["payments_stripe"]
    assert stripe["enabled"] is False and stripe["missing_settings"] == ["HOOKSHOP_STRIPE_SECRET_KEY"]
    rows = {row["name"]: row for row in stripe["settings"]}
    assert rows["HOOKSHOP_STRIPE_WEBHOOK_SECRET"]["value"] == MASK and rows["HOOKSHOP_STRIPE_WEBHOOK_SECRET"]["set"]
    assert rows["HOOKSHOP_STRIPE_SECRET_KEY"]["required"] and rows["HOOKSHOP_STRIPE_SECRET_KEY"]["value"] is None
    assert plugins["payments_manual"]["settings"] == [] and plugins["payments_manual"]["missing_settings"] == []
    assert "soon" in {row["name"]: row for row in plugins["channel_webhook"]["settings"]}[
        "HOOKSHOP_CHANNEL_WEBHOOK_TIMEOUT"]["problem"]


# ------------------------------------------------------------------ a plugin's own hooks


class LoyaltySpecs:
    @hookspec
    def loyalty_points(self, order):
        """Return the points an order earns (the loyalty plugin adds them up)."""


class Loyalty:
    """Owns the hook loyalty_points: declares it and calls it."""

    @hookimpl
    def hookshop_addhooks(self, pluginmanager):
        pluginmanager.add_hookspecs(LoyaltySpecs)


class Bonus:
    @hookimpl
    def loyalty_points(self, order):
        return 10


class OptionalBonus:
    @hookimpl(optionalhook=True)
    def loyalty_points(self, order):
        return 5


class MisspelledBonus:
    @hookimpl
    def loyalty_points(self, ordr):
        return 1


def _app(tmp_path, *plugins):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                       "REDIS_URL": None, "EXTRA_PLUGINS": list(plugins)})


def test_hook_hookshop_addhooks(tmp_path):
    """A plugin's own hookspec: another plugin implements it, registered before or after the owner."""
    from engine.plugins import registry

    app = _app(tmp_path, ("bonus", Bonus()), ("loyalty", Loyalty()), ("optional", OptionalBonus()))
    with app.app_context():
        assert sorted(registry().pm.hook.loyalty_points(order=None)) == [5, 10]
    infos = {info.name: info for info in app.extensions["hookshop"].infos}
    assert infos["bonus"].hooks == ["loyalty_points"] and infos["loyalty"].hooks == ["hookshop_addhooks"]
    assert check_plugin(Bonus(), Loyalty()) == ["loyalty_points"]
    with pytest.raises(ConformanceError, match="loyalty_points is not a hookshop hook"):
        check_plugin(Bonus())


def test_hook_hookshop_addhooks_an_implementation_without_its_spec_stops_start_up_naming_the_plugin(tmp_path):
    with pytest.raises(PluginError, match="plugin 'bonus' implements unknown hooks: loyalty_points"):
        _app(tmp_path, ("bonus", Bonus()))
    with pytest.raises(PluginError, match="(?s)plugin 'misspelled' is invalid: .*ordr"):
        _app(tmp_path, ("misspelled", MisspelledBonus()), ("loyalty", Loyalty()))
    app = _app(tmp_path, ("optional", OptionalBonus()))  # optionalhook: loads without the hook's owner
    assert {info.name for info in app.extensions["hookshop"].infos if info.enabled} >= {"optional"}
