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

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import marshmallow as ma

from engine.setting_kinds import (
    MASK,
    Choice,
    Email,
    Flag,
    Integer,
    Items,
    Mapping,
    Networks,
    Number,
    Path,
    Percent,
    Secret,
    SettingsError,
    Text,
    Url,
    _Kind,
    _unset,
)

__all__ = [
    "Choice",
    "Email",
    "Flag",
    "Integer",
    "Items",
    "MASK",
    "Mapping",
    "Networks",
    "Number",
    "Path",
    "Percent",
    "PluginSettings",
    "Secret",
    "Setting",
    "SettingsError",
    "Text",
    "Url",
    "of",
]


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
