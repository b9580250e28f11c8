"""The marshmallow fields of the channel payload schemas.

Platforms send messy data, so these fields read an absent key and ``null`` alike and check the value
themselves: a field either answers the value (``Text`` trims and cuts, never fails) or raises one
message in the words the API has always used. Amounts are decimal strings in the order's currency,
set for one ``load`` with ``money(Money(currency=...))`` (a context variable: marshmallow's nested
schemas know nothing of their parent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, missing

from engine.plugin_api import currency_code, exponent, is_currency
from plugins.channel_webhook.formats.common import text

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_AMOUNT = 10**12


@dataclass(frozen=True)
class Money:
    """What the amounts of one payload are in: its currency, and whether the ``*_tax`` amounts belong to
    the prices (WooCommerce's ``prices_include_tax``); ``presentment`` the buyer's other currency."""

    currency: str = "USD"
    tax_included: bool = False
    presentment: str | None = None
    shipping_from_set: bool = False  # Shopify: no shipping lines, the shipping is total_shipping_price_set's


_MONEY: ContextVar[Money | None] = ContextVar("channel_money", default=None)


def current_money() -> Money:
    return _MONEY.get() or Money()


@contextmanager
def money(context: Money) -> Iterator[None]:
    token = _MONEY.set(context)
    try:
        yield
    finally:
        _MONEY.reset(token)


def lenient_currency(value: Any, fallback: str = "USD") -> str:
    """The currency amounts are read in: the payload's when it is valid (its own field reports when not)."""
    code = text(value, 4)
    return currency_code(code) if code and is_currency(code) else fallback


def to_minor(value: Any, currency: str) -> int:
    """``"19.99"`` (a decimal string, or a number) -> ``1999`` in the currency's minor unit; ``None``/``""`` 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationError('a decimal amount such as "19.99"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError("must be a finite amount of at least 0")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValidationError(f"{value!r} has more decimals than {currency} has")
    if scaled > MAX_AMOUNT:
        raise ValidationError("too large")
    return int(scaled)


class Lenient(fields.Field):
    """A field for which an absent key is ``null`` (or ``default`` when one is given); ``used_when``: read
    only when it says True of the object the field is in (else None: a value nothing uses is not checked)."""

    def __init__(self, *, default: Any = missing, used_when: Callable[[Mapping[str, Any]], bool] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.absent, self.used_when = default, used_when

    def deserialize(self, value: Any, attr: str | None = None, data: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> Any:
        if self.used_when is not None and not self.used_when(data or {}):
            return None
        if value is missing:
            if self.absent is not missing:
                return self.absent
            value = None
        return self._deserialize(value, attr, data, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return value


class Raw(Lenient):
    """The value as sent (flags compared with ``is True``, statuses, locale tags)."""


class Text(Lenient):
    """A trimmed string cut to ``limit``, or None; ``needed``: "required" when there is none."""

    def __init__(self, limit: int = 200, *, needed: bool = False, longest: int | None = None,
                 upper: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit, self.needed, self.longest, self.upper = limit, needed, longest, upper

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        result = text(value, self.limit)
        if result is None:
            if self.needed:
                raise ValidationError("required")
            return None
        if self.longest is not None and len(result) > self.longest:
            raise ValidationError(f"at most {self.longest} characters")
        return result.upper() if self.upper else result


class Country(Text):
    """An ISO 3166-1 alpha-2 code, upper-cased."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(upper=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result is not None and not COUNTRY.match(result):
            raise ValidationError("an ISO 3166-1 alpha-2 country code, e.g. DE")
        return result


class Email(Text):
    """An e-mail address; ``optional``: none given is None rather than "required"."""

    def __init__(self, *, optional: bool = False, **kwargs: Any) -> None:
        super().__init__(254, needed=not optional, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result is not None and not EMAIL.match(result):
            raise ValidationError("not a valid e-mail address")
        return result


class Integer(Lenient):
    """A strict integer (no strings, floats or booleans) of at least ``minimum``; ``optional``: None is
    None."""

    def __init__(self, *, minimum: int = 0, optional: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.optional = minimum, optional

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("an integer is required")
        if value < self.minimum:
            raise ValidationError(f"must be at least {self.minimum}")
        return value


class Choice(Lenient):
    """One of ``choices`` (None included, or not), else ``message``."""

    def __init__(self, choices: Sequence[Any], message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices, self.message = tuple(choices), message

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if value not in self.choices:
            raise ValidationError(self.message)
        return value


class Currency(Lenient):
    """An active ISO 4217 code, upper-cased; ``optional``: none given is None; ``fallback``: the code
    meant when none is given."""

    def __init__(self, *, optional: bool = False, fallback: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.optional, self.fallback = optional, fallback

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if value is None and self.optional:
            return None
        if not value and self.fallback:
            value = self.fallback
        code = text(value, 4)
        if not code:
            raise ValidationError("an ISO 4217 currency code is required")
        if not is_currency(code):
            raise ValidationError(f"{code!r} is not an active ISO 4217 currency code (e.g. EUR, USD, JPY)")
        return currency_code(code)


class ExternalId(Lenient):
    """The channel's id of a thing (an integer or a string of at most 128 characters), as a string."""

    def __init__(self, message: str = "the channel's order id is required", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
            raise ValidationError(self.message)
        value = str(value).strip()
        if len(value) > 128:
            raise ValidationError("at most 128 characters")
        return value


class Amount(Lenient):
    """A decimal amount in minor units of the payload's currency (``None``/``""`` is 0).

    ``optional``: ``None``/``""`` stays None. ``tax``: a ``*_tax`` amount, counted only where the prices
    include tax (else 0, unread). ``signed``: a leading ``-`` is kept apart, ``(negative, amount)``;
    ``unsigned``: a leading ``-`` is dropped.
    ``currency_key``: the object's own currency field (Shopify's transactions, money sets), else the
    payload's currency (``presentment``: the buyer's)."""

    def __init__(self, *, optional: bool = False, tax: bool = False, signed: bool = False, unsigned: bool = False,
                 currency_key: str | None = None, presentment: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.optional, self.tax, self.signed, self.unsigned = optional, tax, signed, unsigned
        self.currency_key, self.presentment = currency_key, presentment

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        context = current_money()
        if self.tax and not context.tax_included:
            return 0
        if self.optional and value in (None, ""):
            return None
        currency = (context.presentment if self.presentment else None) or context.currency
        if self.currency_key:
            currency = lenient_currency((data or {}).get(self.currency_key), currency)
        if self.signed or self.unsigned:
            raw = str(value or "0").strip()
            amount = to_minor(raw.lstrip("-"), currency)
            return (raw.startswith("-"), amount) if self.signed else amount
        return to_minor(value, currency)


class Rate(Lenient):
    """A tax rate as a decimal string (``"0.19"``); ``percent``: given in percent (``19``)."""

    def __init__(self, *, percent: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.percent = percent

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, (int, float, str)) or not str(value).strip():
            return None
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError("a number is required") from None
        return str((rate / 100).normalize()) if self.percent else str(rate)


class Object(Lenient):
    """A nested object read with ``schema``. What is not an object (or is ``blank``: none of those keys
    has a text) is None, or the message ``invalid`` (not an object) or ``empty`` (none given);
    ``when``: objects it says False of are None, unread."""

    def __init__(self, schema: type[Schema], *, invalid: str | None = None, empty: str | None = None,
                 blank: Sequence[str] = (), when: Callable[[Mapping[str, Any]], bool] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schema_class, self.invalid, self.empty, self.blank, self.when = schema, invalid, empty, blank, when
        self._schema: Schema | None = None  # made once, on first use (a load keeps no state in it)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if value is not None and not isinstance(value, dict) and self.invalid:
            raise ValidationError(self.invalid)
        if not isinstance(value, dict) or (self.blank and not any(text(value.get(k)) for k in self.blank)):
            if self.empty:
                raise ValidationError(self.empty)
            return None
        if self.when is not None and not self.when(value):
            return None
        if self._schema is None:
            self._schema = self.schema_class()
        return self._schema.load(value)


class Items(Lenient):
    """A list of ``item`` values; ``empty``: the message when there is none (or it is no list);
    ``invalid``: the message when it is no list (else it counts as none). Items that read as None are
    dropped (their index in error messages stays the payload's)."""

    def __init__(self, item: fields.Field, *, empty: str | None = None, invalid: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item, self.empty, self.invalid = item, empty, invalid

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list) and value and self.invalid and not self.empty:
            raise ValidationError(self.invalid)
        if not isinstance(value, list) or not value:
            if self.empty:
                raise ValidationError(self.empty)
            return []
        result, errors = [], {}
        for index, item in enumerate(value):
            try:
                loaded = self.item.deserialize(item, attr, None, **kwargs)
            except ValidationError as exc:
                errors[index] = exc.messages
                continue
            if loaded is not None:
                result.append(loaded)
        if errors:
            raise ValidationError(errors)
        return result
