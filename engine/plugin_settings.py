"""A plugin's settings, declared once: name, kind, default, required or not, a one-line doc.

A plugin lists its settings in a ``PluginSettings`` and exports it as ``SETTINGS`` on its plugin object
(the module of its entry point)::

    SETTINGS = PluginSettings("B2B", [
        Setting("DOMAINS", Items(), required=True, doc="customers' e-mail domains that are flagged b2b"),
        Setting("TIMEOUT", Number(min=0), default=10.0, doc="seconds the ERP may take"),
    ])

Values come from ``app.config["<PREFIX>_<NAME>"]``, which the engine fills from ``HOOKSHOP_<PREFIX>_<NAME>``
and the TOML file (engine/config.py, as for the core's own settings): a string from the environment, a
TOML value as it is. ``None`` or an empty string is unset: the default. Each kind is a marshmallow field
(marshmallow validates every input of hookshop), and its error message completes the sentence
``HOOKSHOP_<PREFIX>_<NAME> must be ...``; a secret's value is never part of a message or a listing.
``hookshop plugins`` and ``GET /api/v1/plugins`` list the declared settings with their current values and
the required ones that are missing; docs/plugins.md shows each plugin's ``markdown()`` table.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
from marshmallow import fields

MASK = "********"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """One or more settings have a value the plugin cannot use; the message names each and what to do."""


def _unset(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Kind(fields.Field):
    """A setting's kind: turns an environment string or a TOML value into the value the plugin uses.
    ``label`` is the kind's name in listings and docs; error messages say what the value must be."""

    label = "str"

    def __init__(self, *, check=None, **kwargs):
        super().__init__(**kwargs)
        self.check = check  # value -> None, or what the value must be (a phrase)

    def _deserialize(self, value, attr, data, **kwargs):
        result = self.parse(value)
        problem = self.check(result) if self.check else None
        if problem:
            raise ma.ValidationError(problem)
        return result

    def parse(self, value):
        if isinstance(value, dict | list | bool):
            raise ma.ValidationError("a text value")
        return str(value).strip()

    def show(self, value) -> str:
        return str(value)


class Text(_Kind):
    pass


class Secret(Text):
    """A password, key or signing secret: shown as ``********``, never printed."""

    label = "secret"

    def parse(self, value):
        if isinstance(value, dict | list | bool):
            raise ma.ValidationError("a text value")
        return str(value)  # as given: a password may end in a space

    def show(self, value) -> str:
        return MASK


class Choice(Text):
    def __init__(self, *choices: str, **kwargs):
        super().__init__(**kwargs)
        self.choices = choices
        self.label = "|".join(choices)

    def parse(self, value):
        text = super().parse(value).lower()
        if text not in self.choices:
            raise ma.ValidationError(", ".join(self.choices[:-1]) + f" or {self.choices[-1]}")
        return text


class Integer(_Kind):
    label = "int"

    def __init__(self, *, min: int | None = None, max: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min, self.max = min, max

    def convert(self, value):
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value) if not isinstance(value, str) else int(value.strip())

    def bounds(self) -> str:
        if self.min is not None and self.max is not None:
            return f" from {self.min} to {self.max}"
        if self.min is not None:
            return f" of at least {self.min}"
        return f" of at most {self.max}" if self.max is not None else ""

    def parse(self, value):
        must = f"a {'whole ' if self.label == 'int' else ''}number{self.bounds()}"
        try:
            number = self.convert(value)
        except (TypeError, ValueError):
            raise ma.ValidationError(must) from None
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ma.ValidationError(must)
        return number


class Number(Integer):
    label = "float"

    def convert(self, value):
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError
        return number


class Percent(_Kind):
    """A percentage from 0 to below 100 (``19``, ``7.7``, ``"7.7%"``) as a ``Decimal``, normalized."""

    label = "decimal"

    def parse(self, value):
        try:
            rate = Decimal(str(value).strip().rstrip("%"))
        except InvalidOperation:
            rate = None
        if isinstance(value, bool) or rate is None or not rate.is_finite() or rate < 0 or rate >= 100:
            raise ma.ValidationError("a percentage from 0 to below 100")
        return Decimal(format(rate.normalize(), "f"))


class Flag(_Kind):
    label = "bool"

    def parse(self, value):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _TRUE + _FALSE:
            raise ma.ValidationError("1/true/yes/on or 0/false/no/off")
        return text in _TRUE


class Url(Text):
    label = "URL"

    def parse(self, value):
        text = super().parse(value)
        if not re.match(r"^https?://[^/\s]+", text):
            raise ma.ValidationError("an http:// or https:// URL")
        return text


class Path(Text):
    """A file's path; with ``table=True`` a TOML table may stand for the file's content."""

    label = "path"

    def __init__(self, *, table: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.table = table
        if table:
            self.label = "path or table"

    def parse(self, value):
        if self.table and isinstance(value, dict):
            return value
        return super().parse(value)

    def show(self, value) -> str:
        return "(a table)" if isinstance(value, dict) else str(value)


class Email(Text):
    """An e-mail address, ``shop@example.com`` or ``"Shop <shop@example.com>"``."""

    label = "e-mail"

    def parse(self, value):
        text = super().parse(value)
        if "@" not in parseaddr(text)[1]:
            raise ma.ValidationError('an e-mail address ("Shop <shop@example.com>" or shop@example.com)')
        return text


class Items(_Kind):
    """A list: a TOML array, or a string split on ``separator`` (a JSON array too); ``item`` parses each."""

    label = "list"

    def __init__(self, item: _Kind | None = None, *, separator: str = ",", spaces: bool = False,
                 non_empty: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.item, self.separator, self.non_empty = item or Text(), separator, non_empty
        self.spaces = spaces  # whitespace separates items too (lists of numbers)
        if item is not None:
            self.label = f"list of {item.label}"

    def parse(self, value):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ma.ValidationError(f"a JSON list or {self.separator!r}-separated values") from None
            else:
                parts = re.split(rf"[{re.escape(self.separator)}\s]+", text) if self.spaces \
                    else text.split(self.separator)
                value = [part.strip() for part in parts if part.strip()]
        if not isinstance(value, list | tuple):
            raise ma.ValidationError(f"a list ({self.separator!r}-separated)")
        items = []
        for item in value:
            try:
                items.append(self.item.parse(item))
            except ma.ValidationError as exc:
                raise ma.ValidationError(f"a list of {exc.messages[0]}; {item!r} is not") from None
        if self.non_empty and not items:
            raise ma.ValidationError("a non-empty list")
        return items

    def show(self, value) -> str:
        return ", ".join(self.item.show(item) for item in value)


class Networks(_Kind):
    """``true`` (every address), or a list of IP networks (``127.0.0.0/8,10.0.0.0/8``)."""

    label = "true or networks"

    def parse(self, value):
        if value is True:
            return True
        if value is False:
            return []
        items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, list) else None
        if items is None:
            raise ma.ValidationError("true or a list of networks")
        if len(items) == 1 and str(items[0]).strip().lower() in ("true", "yes", "1", "all"):
            return True
        try:
            return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip()]
        except ValueError as exc:
            raise ma.ValidationError(f"true or a list of networks ({exc})") from None

    def show(self, value) -> str:
        return "true" if value is True else ", ".join(str(n) for n in value)


class Mapping(_Kind):
    """A table: a TOML table, a JSON object, or ``key=value`` pairs separated by commas; ``value`` parses each."""

    label = "table"

    def __init__(self, value: _Kind | None = None, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def parse(self, value):
        if isinstance(value, dict):
            data = {str(k): v for k, v in value.items()}
        elif isinstance(value, str) and value.strip().startswith("{"):
            try:
                data = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ma.ValidationError(f"a JSON object (this is not valid JSON: {exc})") from None
            if not isinstance(data, dict):
                raise ma.ValidationError("a JSON object")
            data = {str(k): v for k, v in data.items()}
        elif isinstance(value, str):
            data = {}
            for item in filter(None, (part.strip() for part in value.split(","))):
                key, sep, val = item.partition("=")
                if not sep:
                    raise ma.ValidationError(f"key=value pairs separated by commas ({item!r} is not key=value)")
                data[key.strip()] = val.strip()
        else:
            raise ma.ValidationError("a table (TOML), a JSON object or key=value pairs")
        if self.value is None:
            return data
        try:
            return {key: self.value.parse(val) for key, val in data.items()}
        except ma.ValidationError as exc:
            raise ma.ValidationError(f"a table whose values are each {exc.messages[0]}") from None

    def show(self, value) -> str:
        return json.dumps({k: str(v) for k, v in value.items()}, ensure_ascii=False)


@dataclass(frozen=True)
class Setting:
    """One setting: ``name`` after the prefix, its kind, its default (used when unset), its doc."""

    name: str
    kind: _Kind
    default: Any = None
    required: bool = False
    doc: str = ""
    default_doc: str | None = None  # how the default reads in listings when it is computed (e.g. "TAX_RATE")

    @property
    def attribute(self) -> str:
        return self.name.lower()

    @property
    def secret(self) -> bool:
        return isinstance(self.kind, Secret) or isinstance(getattr(self.kind, "item", None), Secret)


class PluginSettings:
    """The settings of one plugin (``prefix``: ``STRIPE`` reads ``HOOKSHOP_STRIPE_*``; ``""`` for none)."""

    def __init__(self, prefix: str, settings: list[Setting]):
        self.prefix = prefix.upper().strip("_")
        self.settings = {s.name: s for s in settings}
        self.schema = ma.Schema.from_dict({s.name: s.kind for s in settings})(unknown=ma.EXCLUDE)

    def key(self, name: str) -> str:
        """The key in ``app.config`` (``STRIPE_TIMEOUT``); ``HOOKSHOP_`` + it is the environment variable."""
        return f"{self.prefix}_{name}" if self.prefix else name

    def env(self, name: str) -> str:
        return "HOOKSHOP_" + self.key(name)

    def raw(self, config) -> dict:
        """The values that are set, by setting name, as the config holds them."""
        values = {}
        for name in self.settings:
            value = config.get(self.key(name))
            if not _unset(value):
                values[name] = value
        return values

    def missing(self, config) -> list[str]:
        """The environment variables of the required settings that are not set."""
        raw = self.raw(config)
        return [self.env(s.name) for s in self.settings.values() if s.required and s.name not in raw]

    def _message(self, name: str, value, messages) -> str:
        must = "; ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        shown = "" if self.settings[name].secret else f", not {value!r}"
        return f"{self.env(name)} must be {must}{shown}"

    def load(self, config) -> SimpleNamespace:
        """Every setting by its lower-case name (``values.timeout``); unset ones get their default.
        ``SettingsError`` names each setting that is missing (required) or invalid, and what to do."""
        raw = self.raw(config)
        problems = [f"{self.env(s.name)} is not set" for s in self.settings.values() if s.required and s.name not in raw]
        try:
            loaded = self.schema.load(raw)
        except ma.ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {}
            problems += [self._message(name, raw.get(name), messages[name])
                         for name in self.settings if name in messages]
            loaded = {}
        if problems:
            raise SettingsError("; ".join(problems))
        return SimpleNamespace(**{s.attribute: loaded.get(s.name, s.default) for s in self.settings.values()})

    def get(self, name: str, config=None):
        """One setting's value read now (from ``current_app.config`` unless ``config`` is given)."""
        if config is None:
            from flask import current_app

            config = current_app.config
        setting = self.settings[name]
        value = config.get(self.key(name))
        if _unset(value):
            return setting.default
        try:
            return setting.kind.deserialize(value)
        except ma.ValidationError as exc:
            raise SettingsError(self._message(name, value, exc.messages)) from None

    def describe(self, config) -> list[dict]:
        """Each setting as ``hookshop plugins`` and ``GET /plugins`` show it (a secret's value masked)."""
        raw, rows = self.raw(config), []
        for s in self.settings.values():
            row = {"name": self.env(s.name), "type": s.kind.label, "required": s.required, "doc": s.doc,
                   "default": self.show_default(s), "set": s.name in raw, "value": None, "problem": None}
            if s.name in raw:
                try:
                    row["value"] = s.kind.show(s.kind.deserialize(raw[s.name]))
                except ma.ValidationError as exc:
                    row["value"] = MASK if s.secret else str(raw[s.name])
                    row["problem"] = self._message(s.name, raw[s.name], exc.messages)
            rows.append(row)
        return rows

    def show_default(self, setting: Setting) -> str | None:
        if setting.default_doc is not None:
            return setting.default_doc
        if setting.default is None or setting.default in ("", [], {}):
            return None
        return setting.kind.show(setting.default)

    def markdown(self) -> str:
        """The settings as a Markdown table (docs/plugins.md has it; a test keeps the two equal)."""
        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        lines = ["| setting | type | default | description |", "|---|---|---|---|"]
        for s in self.settings.values():
            default = "**required**" if s.required else (f"`{self.show_default(s)}`" if self.show_default(s)
                                                          else "unset")
            lines.append(f"| `{self.env(s.name)}` | {cell(s.kind.label)} | {cell(default)} | {cell(s.doc)} |")
        return "\n".join(lines)


def of(plugin) -> PluginSettings | None:
    """The declaration a plugin object exports as ``SETTINGS``, if any."""
    found = getattr(plugin, "SETTINGS", None)
    return found if isinstance(found, PluginSettings) else None
