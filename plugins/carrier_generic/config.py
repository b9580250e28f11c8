"""The carriers file (``HOOKSHOP_CARRIER_GENERIC_CONFIG``): parsing, validation, defaults.

The file is TOML (``.toml``) or JSON (any other name, or a body starting with
``{``). It may configure several carriers; the built-in ``generic`` carrier is
kept unless the file says ``builtin = false`` or defines a carrier of its own
named ``generic``. Every mistake is reported field by field, and the plugin
then stays off with that reason (``hookshop plugins`` shows it).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import marshmallow as ma
from marshmallow import fields, validate

from engine.plugin_api import CurrencyCode
from plugins.carrier_generic.config_model import (
    Api,
    Band,
    CarrierConfig,
    Service,
    Settings,
    Tracking,
    Zone,
    normalize_postal,
)
from plugins.carrier_generic.settings import SETTINGS

# the model, kept importable from here
__all__ = ["BUILTIN", "STATUSES", "WEEKDAYS", "Api", "Band", "CarrierConfig", "ConfigError", "Service", "Settings",
           "Tracking", "Zone", "builtin_carrier", "load", "normalize_postal", "parse", "read_file"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STATUSES = ("in_transit", "out_for_delivery", "delivered", "exception", "returned_to_sender")

# The built-in carrier: one zone (everywhere), the rate table of the README, 3 and 1 business days.
BUILTIN = {
    "name": "generic",
    "label": "Generic carrier",
    "zones": [{"name": "world", "countries": ["*"]}],
    "services": {
        "standard": {"transit_days": 3, "rates": {"world": [
            {"max_grams": 1000, "price": 490}, {"max_grams": 5000, "price": 690},
            {"max_grams": 20000, "price": 1290}, {"price": 2490}]}},
        "express": {"transit_days": 1, "rates": {"world": [
            {"max_grams": 1000, "price": 990}, {"max_grams": 5000, "price": 1390},
            {"max_grams": 20000, "price": 2290}, {"price": 3990}]}},
    },
    "tracking": {"format": "s10", "prefix": "HS", "country": "XX"},
}


class ConfigError(ValueError):
    """The carriers file is missing, unreadable or invalid (``errors``: field by field)."""

    def __init__(self, message: str, errors=None):
        super().__init__(message)
        self.errors = errors or {}



# ----------------------------------------------------------------------------- validation


def _fail(message: str):
    raise ma.ValidationError(message)


class PerZone(fields.Field):
    """An integer for every zone, or a table ``{zone: integer}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ma.ValidationError("an integer, or a table of zone names to integers")
        if isinstance(value, int):
            if value < 0:
                raise ma.ValidationError("must be 0 or more")
            return {"*": value}
        if isinstance(value, dict):
            errors = {k: ["an integer, 0 or more"] for k, v in value.items()
                      if isinstance(v, bool) or not isinstance(v, int) or v < 0}
            if errors:
                raise ma.ValidationError(errors)
            return dict(value)
        raise ma.ValidationError("an integer, or a table of zone names to integers")


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class BandSchema(Strict):
    max_grams = fields.Integer(strict=True, validate=validate.Range(min=1))
    price = fields.Integer(strict=True, required=True, validate=validate.Range(min=0))


class ZoneSchema(Strict):
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    countries = fields.List(fields.String(validate=validate.Regexp(r"^([A-Z]{2}|\*)$",
                                                                   error="an ISO 3166-1 alpha-2 code or *")),
                            required=True, validate=validate.Length(min=1))
    postal_prefixes = fields.List(fields.String(validate=validate.Length(min=1, max=20)), load_default=list)


class ServiceSchema(Strict):
    transit_days = PerZone(required=True)
    rates = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(BandSchema),
                                                                 validate=validate.Length(min=1)), required=True)
    free_over = PerZone(load_default=dict)
    tracking_prefix = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="2 capital letters"))


class TrackingSchema(Strict):
    format = fields.String(load_default="s10", validate=validate.OneOf(["s10", "luhn"]))
    prefix = fields.String(load_default="HS", validate=validate.Regexp(r"^[A-Z0-9]{0,10}$",
                                                                        error="up to 10 capital letters or digits"))
    country = fields.String(load_default="XX", validate=validate.Regexp(r"^[A-Z]{2}$", error="2 capital letters"))
    digits = fields.Integer(strict=True, load_default=10, validate=validate.Range(min=4, max=20))
    start = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=0))
    url = fields.String(validate=lambda url: "{tracking_number}" in url or _fail("must contain {tracking_number}"))
    secret = fields.String(validate=validate.Length(min=1))

    @ma.validates_schema
    def _s10_prefix(self, data, **kwargs):
        prefix = data.get("prefix", "HS")
        if data.get("format", "s10") == "s10" and (len(prefix) != 2 or not prefix.isalpha()):
            raise ma.ValidationError({"prefix": ["2 capital letters for the s10 format"]})


class ApiSchema(Strict):
    url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    timeout = fields.Float(load_default=10.0, validate=validate.Range(min=0.01, max=300))
    retries = fields.Integer(strict=True, load_default=2, validate=validate.Range(min=0, max=10))
    backoff = fields.Float(load_default=0.5, validate=validate.Range(min=0, max=60))
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    request = fields.Dict(keys=fields.String(), load_default=None)
    response = fields.Dict(keys=fields.String(validate=validate.OneOf(
        ["tracking_number", "estimated_delivery", "tracking_url", "label_pdf", "price", "shipment_id"])),
        values=fields.String(), load_default=dict)
    cancel_url = fields.String()
    cancel_method = fields.String(load_default="DELETE", validate=validate.OneOf(["DELETE", "POST"]))


class AddressSchema(Strict):
    name = fields.String(required=True)
    company = fields.String()
    line1 = fields.String()
    line2 = fields.String()
    postal_code = fields.String()
    city = fields.String()
    region = fields.String()
    country = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="an ISO 3166-1 alpha-2 code"))
    phone = fields.String()
    email = fields.String()


class CarrierSchema(Strict):
    name = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9][a-z0-9_-]{0,63}$", error="lower-case letters, digits, _ and - (it is part of URLs)"))
    label = fields.String(validate=validate.Length(min=1, max=60))
    currency = CurrencyCode(metadata={"description": "only orders in this currency (default: any)"})
    holidays = fields.String(load_default="destination")
    holidays_subdivision = fields.String()
    weekend = fields.List(fields.String(validate=validate.OneOf(WEEKDAYS)), load_default=lambda: ["sat", "sun"])
    zones = fields.List(fields.Nested(ZoneSchema), required=True, validate=validate.Length(min=1))
    services = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[a-z0-9_-]{1,64}$")),
                           values=fields.Nested(ServiceSchema), required=True, validate=validate.Length(min=1))
    tracking = fields.Nested(TrackingSchema, load_default=dict)
    sender = fields.Nested(AddressSchema)
    api = fields.Nested(ApiSchema)

    @ma.validates_schema
    def _cross_check(self, data, **kwargs):
        import holidays as holidays_lib

        errors: dict = {}
        zone_names = [z["name"] for z in data.get("zones", [])]
        if len(set(zone_names)) != len(zone_names):
            errors["zones"] = ["zone names must be unique"]
        known = set(zone_names) | {"*"}
        for name, service in (data.get("services") or {}).items():
            problems = {}
            for key in ("rates", "transit_days", "free_over"):
                unknown = sorted(set(service.get(key) or {}) - known)
                if unknown:
                    problems[key] = [f"unknown zones: {', '.join(unknown)}"]
            for zone, bands in (service.get("rates") or {}).items():
                limits = [b.get("max_grams") for b in bands]
                if None in limits[:-1] or not all(a < b for a, b in zip(limits, limits[1:], strict=False)
                                                  if b is not None):
                    problems.setdefault("rates", []).append(
                        f"{zone}: bands must grow by max_grams; only the last may have no max_grams")
            transit = service.get("transit_days") or {}
            missing = sorted(z for z in service.get("rates") or {} if z not in transit and "*" not in transit)
            if missing:
                problems.setdefault("transit_days", []).append(f"no transit days for zones: {', '.join(missing)}")
            if problems:
                errors.setdefault("services", {})[name] = problems
        country = data.get("holidays", "destination")
        if country not in ("destination", "none"):
            if country not in holidays_lib.list_supported_countries():
                errors["holidays"] = [f"unknown country {country!r} (an ISO code known to the holidays package, "
                                      "'destination' or 'none')"]
            elif data.get("holidays_subdivision") and data["holidays_subdivision"] not in \
                    holidays_lib.list_supported_countries()[country]:
                errors["holidays_subdivision"] = [f"unknown subdivision of {country}"]
        if len(set(data.get("weekend") or [])) >= 7:
            errors["weekend"] = ["at least one day of the week must be a business day"]
        if errors:
            raise ma.ValidationError(errors)


class FileSchema(Strict):
    builtin = fields.Boolean(load_default=True)
    sender = fields.Nested(AddressSchema)
    carriers = fields.List(fields.Nested(CarrierSchema), load_default=list)

    @ma.validates_schema
    def _unique_names(self, data, **kwargs):
        names = [c["name"] for c in data.get("carriers", [])]
        if len(set(names)) != len(names):
            raise ma.ValidationError({"carriers": ["carrier names must be unique"]})


# ----------------------------------------------------------------------------- building


def _carrier(data: dict, default_sender: dict | None) -> CarrierConfig:
    services = {}
    for name, s in data["services"].items():
        services[name] = Service(
            name=name, transit_days=dict(s["transit_days"]),
            rates={zone: tuple(Band(b.get("max_grams"), b["price"]) for b in bands)
                   for zone, bands in s["rates"].items()},
            free_over=dict(s.get("free_over") or {}), tracking_prefix=s.get("tracking_prefix"))
    t = data.get("tracking") or {}
    tracking = Tracking(format=t.get("format", "s10"), prefix=t.get("prefix", "HS"), country=t.get("country", "XX"),
                        digits=t.get("digits", 10), start=t.get("start", 1), url=t.get("url"),
                        secret=t.get("secret"))
    api = None
    if data.get("api"):
        a = data["api"]
        api = Api(url=a["url"], timeout=a["timeout"], retries=a["retries"], backoff=a["backoff"],
                  headers=dict(a["headers"]), request=a.get("request"), response=dict(a["response"]),
                  cancel_url=a.get("cancel_url"), cancel_method=a["cancel_method"])
    return CarrierConfig(
        name=data["name"], label=data.get("label") or data["name"],
        zones=tuple(Zone(z["name"], tuple(z["countries"]),
                         tuple(normalize_postal(p) for p in z.get("postal_prefixes") or ())) for z in data["zones"]),
        services=services, tracking=tracking, currency=data.get("currency"),
        holidays=data.get("holidays", "destination"), holidays_subdivision=data.get("holidays_subdivision"),
        weekend=tuple(sorted({WEEKDAYS.index(d) for d in data.get("weekend", ["sat", "sun"])})),
        sender=data.get("sender") or default_sender, api=api)


def builtin_carrier(sender: dict | None = None) -> CarrierConfig:
    return _carrier(CarrierSchema().load(BUILTIN), sender)


def parse(document: dict, source: str | None = None) -> Settings:
    """Validate a carriers document (the parsed file) and build the settings."""
    try:
        data = FileSchema().load(document)
    except ma.ValidationError as exc:
        raise ConfigError(f"{source or 'the carriers file'} is not valid: {_flat(exc.messages)}",
                          exc.messages) from exc
    carriers = [_carrier(c, data.get("sender")) for c in data["carriers"]]
    if data["builtin"] and "generic" not in {c.name for c in carriers}:
        carriers.insert(0, builtin_carrier(data.get("sender")))
    if not carriers:
        raise ConfigError(f"{source or 'the carriers file'} configures no carrier (and builtin = false)")
    return Settings(carriers=tuple(carriers), source=source)


def read_file(path: str) -> dict:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the carriers file {path}: {exc.strerror or exc}") from exc
    try:
        if file.suffix.lower() == ".toml" or (file.suffix.lower() != ".json" and not text.lstrip().startswith("{")):
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"the carriers file {path} is not valid {'TOML' if file.suffix != '.json' else 'JSON'}: "
                          f"{exc}") from exc


def load(config) -> Settings:
    """The settings from the app's config (``CARRIER_GENERIC_CONFIG``: a path, or a table already parsed)."""
    try:
        value = SETTINGS.get("CONFIG", config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if not value:
        return Settings(carriers=(builtin_carrier(),))
    if isinstance(value, dict):
        return parse(value, "CARRIER_GENERIC_CONFIG")
    return parse(read_file(str(value)), str(value))


def _flat(messages, prefix: str = "") -> str:
    """marshmallow's nested messages as one line: ``carriers.0.zones: ...; ...``."""
    parts = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "value":  # fields.Dict nests a value's errors one level down
                parts.append(_flat(value, prefix))
            elif key == "key":
                parts.append(_flat(value, f"{prefix} (name)"))
            else:
                parts.append(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        parts.append(f"{prefix}: {' '.join(messages)}" if prefix else " ".join(messages))
    else:
        for index, value in enumerate(messages):
            parts.append(_flat(value, f"{prefix}.{index}"))
    return "; ".join(p for p in parts if p)
