"""Settings (prefix ``HOOKSHOP_SALESFORCE_``), read once per app by ``plugin_setup`` (see the README).

``INSTANCE_URL`` is required; the login is ``USERNAME`` + ``PASSWORD`` + ``SECURITY_TOKEN`` (simple-salesforce's
SOAP login, renewed by itself when the session expires) or an OAuth ``ACCESS_TOKEN`` (used as it is; an
expired token is reported on every waiting record until a new one is set). ``MAPPING`` renames or leaves out
the Salesforce fields the plugin writes (``mapping.py``).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from flask import current_app

from engine.plugin_api import (  # noqa: F401  (SettingsError: plugin_setup catches it)
    Choice,
    FilePath,
    Integer,
    Number,
    PluginSettings,
    Secret,
    Setting,
    SettingsError,
    Text,
    Url,
)

EXTENSION = "crm_salesforce"
MAX_BATCH = 200  # records per sObject Collections call: Salesforce's limit


def _version(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9]{2,3}\.[0-9]", value) else "a version like 59.0 (no leading v)"


def _field_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value) else "a Salesforce field's API name"


SETTINGS = PluginSettings("SALESFORCE", [
    Setting("INSTANCE_URL", Url(), required=True, doc="the org's instance, https://<my domain>.my.salesforce.com"),
    Setting("USERNAME", Text(), doc="the integration user's login (with PASSWORD and SECURITY_TOKEN)"),
    Setting("PASSWORD", Secret(), doc="the integration user's password"),
    Setting("SECURITY_TOKEN", Secret(), doc="the integration user's security token"),
    Setting("ACCESS_TOKEN", Secret(), doc="an OAuth access token, instead of the username and password"),
    Setting("LOGIN_DOMAIN", Text(), default="login",
            doc="where the username logs in: login, test (a sandbox) or the My Domain prefix (acme.my)"),
    Setting("API_VERSION", Text(check=_version), default="59.0", doc="the REST API version"),
    Setting("EXTERNAL_ID_FIELD", Text(check=_field_name), default="Hookshop_Id__c",
            doc="the external id field on Contact, Account and the order object (upserts go by it)"),
    Setting("ORDER_OBJECT", Choice("Order", "Opportunity"), default="Order",
            doc="the object an order becomes"),
    Setting("DEFAULT_ACCOUNT_ID", Text(), doc="the Account of consumers' orders (an Order needs one; "
                                              "B2B customers get an Account of their own)"),
    Setting("MAPPING", FilePath(table=True), doc="field mapping: a JSON or TOML file (or a table) of "
                                                 "kind -> {hookshop field: Salesforce field or null}"),
    Setting("BATCH", Integer(min=1, max=MAX_BATCH), default=MAX_BATCH, doc="records per Collections call"),
    Setting("TIMEOUT", Number(), default=10.0, doc="seconds a Salesforce call may take"),
    Setting("SWEEP_SECONDS", Integer(min=1), default=60,
            doc="a record still waiting this long after its last attempt is pushed by the periodic sweep"),
])


@dataclass
class Settings:
    instance_url: str
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    access_token: str | None = None
    login_domain: str = "login"
    api_version: str = "59.0"
    external_id: str = "Hookshop_Id__c"
    order_object: str = "Order"
    default_account_id: str | None = None
    mapping: dict = field(default_factory=dict)
    batch: int = MAX_BATCH
    timeout: float = 10.0
    sweep_seconds: int = 60

    @property
    def auth(self) -> str:
        """``password`` or ``token``."""
        return "token" if self.access_token else "password"


def _mapping(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        data = value
    else:
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"HOOKSHOP_SALESFORCE_MAPPING: cannot read {value}: {exc.strerror}") from None
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"HOOKSHOP_SALESFORCE_MAPPING: {value} is not valid "
                                f"{'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}") from None
    from .mapping import check_mapping

    problem = check_mapping(data)
    if problem:
        raise SettingsError(f"HOOKSHOP_SALESFORCE_MAPPING: {problem}")
    return data


def load(config) -> Settings:
    """Parse the ``SALESFORCE_*`` settings of an app config; raises SettingsError with a sentence."""
    values = SETTINGS.load(config)
    if not values.access_token and not (values.username and values.password and values.security_token):
        raise SettingsError("set HOOKSHOP_SALESFORCE_USERNAME, HOOKSHOP_SALESFORCE_PASSWORD and "
                            "HOOKSHOP_SALESFORCE_SECURITY_TOKEN, or HOOKSHOP_SALESFORCE_ACCESS_TOKEN")
    host = urlparse(values.instance_url).hostname or ""
    if not host:
        raise SettingsError("HOOKSHOP_SALESFORCE_INSTANCE_URL must name a host")
    return Settings(instance_url=values.instance_url.rstrip("/"), username=values.username,
                    password=values.password, security_token=values.security_token,
                    access_token=values.access_token, login_domain=values.login_domain,
                    api_version=values.api_version, external_id=values.external_id_field,
                    order_object=values.order_object, default_account_id=values.default_account_id,
                    mapping=_mapping(values.mapping), batch=values.batch, timeout=values.timeout,
                    sweep_seconds=values.sweep_seconds)


def current() -> Settings:
    """The settings of the current app (parsed at ``plugin_setup``)."""
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        found = current_app.extensions[EXTENSION] = {"settings": load(current_app.config), "connection": None}
    return found["settings"]


def state() -> dict:
    """The app's plugin state: ``settings``, the cached client."""
    current()
    return current_app.extensions[EXTENSION]
