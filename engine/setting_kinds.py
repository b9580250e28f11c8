"""The kinds of a plugin's settings (engine/plugin_settings.py): each a marshmallow field that reads a string
from the environment or a TOML value, and whose error message completes ``HOOKSHOP_<PREFIX>_<NAME> must be ...``."""

from __future__ import annotations

import ipaddress
import json
import re
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr

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
