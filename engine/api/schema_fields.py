"""The building blocks of the API's marshmallow schemas: strict fields (no floats for money or quantities, no
strings for booleans), the shared validators and the strict base schema every schema derives from."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import RAISE, fields, validate

from engine.api.limits import INT64_MAX
from engine.domain import money as money_rules
from engine.domain.barcodes import PATTERN as BARCODE_PATTERN
from engine.domain.money import MAX_AMOUNT

Int = fields.Integer
# a list of validators (not validate.And) so that the OpenAPI document shows maxLength and the pattern
SKU = [validate.Length(min=1, max=64), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$",
                                                       error="letters, digits and . _ - / only")]
# /stock/receipts is a route of its own: no product may be called that
NEW_SKU = [*SKU, validate.NoneOf(["receipts", "transfers", "adjustments", "counts", "reconciliation", "alerts"],
                                 error="reserved: a route of /stock/ is called that")]
CURRENCY = [validate.Length(equal=3), validate.Regexp(r"^[A-Za-z]{3}$", error="an ISO 4217 code")]
# the check digit of an all-digit barcode (a GTIN) is checked by the service (engine/domain/barcodes.py)
BARCODE = [validate.Length(min=1, max=64),
           validate.Regexp(BARCODE_PATTERN, error="printable ASCII characters only, no space at either end")]
BARCODE_DOC = {"description": "EAN-8, UPC-A, EAN-13 or GTIN-14 (digits only: the check digit must be right), "
                              "or a Code128 string of the shop's own (not all digits)"}


class StrictBoolean(fields.Boolean):
    """JSON true or false only (``truthy={True}`` alone lets 1 and 0 in: they equal True and False)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def boolean(**kw):
    """A strict boolean: JSON true or false only."""
    return StrictBoolean(**kw)


def integer(minimum: int = 0, maximum: int = INT64_MAX, **kw) -> fields.Integer:
    """A JSON integer: strict (no floats, strings or booleans) and within ``[minimum, maximum]``.

    The default bounds fit a 64-bit signed column: every integer the API accepts can be stored."""
    metadata = {"format": "int64", **kw.pop("metadata", {})}
    return Int(strict=True, validate=validate.Range(min=minimum, max=min(maximum, INT64_MAX)), metadata=metadata,
               **kw)


class QueryBoolean(fields.Boolean):
    """A boolean in a query string: ``true`` or ``false`` only (marshmallow also takes 1, yes, on...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value not in ("true", "false"):
            raise self.make_error("invalid", input=value)
        return value == "true"


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits only (int() would also take ' 1', '+1' and '1_000')."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,19}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def query_integer(minimum: int = 1, maximum: int = INT64_MAX, **kw) -> fields.Integer:
    """A query-string integer within ``[minimum, maximum]`` (default: an id, 1 to 2^63-1)."""
    metadata = {"format": "int64", **kw.pop("metadata", {})}
    return QueryInteger(validate=validate.Range(min=minimum, max=min(maximum, INT64_MAX)), metadata=metadata, **kw)


def mapping(keys: fields.Field, values: fields.Field, max_entries: int, **kw) -> fields.Dict:
    """A JSON object of at most ``max_entries`` entries (documented as maxProperties)."""

    def at_most(value: dict) -> None:
        if len(value) > max_entries:
            raise ma.ValidationError(f"at most {max_entries} entries")

    metadata = {"maxProperties": max_entries, **kw.pop("metadata", {})}
    return fields.Dict(keys=keys, values=values, validate=at_most, metadata=metadata, **kw)


class Scalar(fields.Raw):
    """A JSON string (at most ``max_length`` characters), boolean, 64-bit integer or null."""

    def __init__(self, max_length: int = 500, **kw):
        self.max_length = max_length
        metadata = {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "boolean"},
                              {"type": "integer", "format": "int64", "minimum": -INT64_MAX - 1,
                               "maximum": INT64_MAX}],
                    "nullable": True, **kw.pop("metadata", {})}
        super().__init__(allow_none=True, metadata=metadata, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) <= self.max_length or isinstance(value, bool):
            return value
        if isinstance(value, int) and -INT64_MAX - 1 <= value <= INT64_MAX:
            return value
        raise ma.ValidationError(f"a string of at most {self.max_length} characters, a boolean, an integer or null")


def count(**kw):
    return integer(1, 1_000_000, **kw)


def money(**kw):
    return integer(0, MAX_AMOUNT, **kw)


def positive_money(**kw):
    """A positive amount of money in minor units (not capped like a count of units)."""
    return integer(1, MAX_AMOUNT, **kw)


class CurrencyCode(fields.String):
    """An active ISO 4217 currency code with a minor unit (``engine.domain.money``), any letter case;
    loaded upper-case. ``XYZ``, ``XXX`` or ``XAU`` fail, naming the field."""

    default_error_messages = {"unknown": "{input!r} is not an active ISO 4217 currency code (e.g. EUR, USD, JPY)"}

    def __init__(self, **kw):
        metadata = {"description": "an active ISO 4217 code, e.g. EUR (lower case is accepted)", "example": "EUR",
                    **kw.pop("metadata", {})}
        super().__init__(validate=validate.Length(equal=3, error="3 letters, an ISO 4217 code (e.g. EUR)"),
                         metadata=metadata, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs)
        if len(code) != 3:
            return code  # the length validator says so
        try:
            return money_rules.currency_code(code)
        except money_rules.UnknownCurrency:
            raise self.make_error("unknown", input=code) from None


class Strict(ma.Schema):
    class Meta:
        unknown = RAISE


class ErrorSchema(Strict):
    code = fields.String(required=True, metadata={"description": "snake_case error code, e.g. insufficient_stock"})
    message = fields.String(required=True, metadata={"description": "a sentence saying what went wrong"})
    errors = fields.Dict(required=True,
                         metadata={"description": "field-by-field messages (marshmallow's nested format)"})

