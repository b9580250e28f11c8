"""marshmallow schemas: input validation at the edge (strict integers, unknown
fields rejected) and the documented shape of responses."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import RAISE, fields, validate

from engine.domain import money as money_rules
from engine.domain.transitions import STATUSES

Int = fields.Integer
SKU = validate.And(validate.Length(min=1, max=64), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$",
                   error="letters, digits and . _ - / only"))


def boolean(**kw):
    """A strict boolean: JSON true or false only."""
    return fields.Boolean(truthy={True}, falsy={False}, **kw)


def count(**kw):
    return Int(strict=True, validate=validate.Range(min=1, max=1_000_000), **kw)


def money(**kw):
    return Int(strict=True, validate=validate.Range(min=0, max=10**12), **kw)


def positive_money(**kw):
    """A positive amount of money in minor units (not capped like a count of units)."""
    return Int(strict=True, validate=validate.Range(min=1, max=10**12), **kw)


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


# ---------------------------------------------------------------- products and stock


class ProductIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    price = money(required=True, metadata={"description": "minor units (cents)"})
    currency = CurrencyCode(required=True)
    barcode = fields.String(validate=validate.Length(min=1, max=64), allow_none=True)
    track_serials = boolean(load_default=False)
    allow_backorder = boolean(load_default=False)
    reorder_point = Int(strict=True, validate=validate.Range(min=0), load_default=0)
    reorder_quantity = Int(strict=True, validate=validate.Range(min=0), load_default=0)
    weight_grams = Int(strict=True, validate=validate.Range(min=0), load_default=0)
    unit_cost = money(allow_none=True)


class ProductOut(Strict):
    id = Int()
    sku = fields.String()
    name = fields.String()
    price = Int()
    currency = fields.String()
    barcode = fields.String(allow_none=True)
    track_serials = fields.Boolean()
    allow_backorder = fields.Boolean()
    reorder_point = Int()
    reorder_quantity = Int()
    weight_grams = Int()
    unit_cost = Int(allow_none=True)


class StockReceiptIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(required=True)
    location = fields.String(validate=validate.Length(min=1, max=64))
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)), validate=validate.Length(max=10000))
    reference = fields.String(validate=validate.Length(max=200))
    unit_cost = money()


class LocationStock(Strict):
    location = fields.String()
    on_hand = Int()
    reserved = Int()
    available = Int()


class StockOut(Strict):
    sku = fields.String()
    on_hand = Int()
    reserved = Int()
    available = Int()
    locations = fields.List(fields.Nested(LocationStock))


# ---------------------------------------------------------------- orders

def _country(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ma.ValidationError("an ISO 3166-1 alpha-2 code in capitals, e.g. DE")


class AddressIn(Strict):
    line1 = fields.String(required=True, validate=validate.Length(min=1, max=200))
    line2 = fields.String(validate=validate.Length(max=200), allow_none=True)
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    postal_code = fields.String(required=True, validate=validate.Length(min=1, max=20))
    country = fields.String(required=True, validate=_country)
    region = fields.String(validate=validate.Length(max=100), allow_none=True)
    company = fields.String(validate=validate.Length(max=200), allow_none=True)


class CustomerIn(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9 ()./\-]{4,40}$", error="a phone number"),
                          allow_none=True)
    shipping_address = fields.Nested(AddressIn, required=True)
    preferences = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))


class LineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(required=True)


class OrderIn(Strict):
    customer = fields.Nested(CustomerIn, required=True)
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1, max=500,
                        error="an order needs between 1 and 500 lines"))
    channel = fields.String(validate=validate.Length(min=1, max=64))
    external_id = fields.String(validate=validate.Length(min=1, max=128))
    coupon = fields.String(validate=validate.Length(min=1, max=64))
    payment_provider = fields.String(validate=validate.Length(min=1, max=64))
    payment_method = fields.String(validate=validate.Length(min=1, max=255))
    gift = boolean(load_default=False)


class ScansIn(Strict):
    scans = fields.List(fields.String(validate=validate.Length(min=1, max=128)), required=True,
                        validate=validate.Length(min=1, max=10000))


class PayIn(Strict):
    amount = positive_money(metadata={"description": "part payment in minor units; default: everything still due"})
    reference = fields.String(validate=validate.Length(min=1, max=200))
    payment_method = fields.String(validate=validate.Length(min=1, max=255))


class ShipIn(Strict):
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=64))
    service = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ReasonIn(Strict):
    reason = fields.String(validate=validate.Length(max=500), load_default="")


class HoldIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class RefundIn(Strict):
    amount = positive_money(required=True)
    reason = fields.String(validate=validate.Length(max=500), load_default="")


class ReturnLineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(required=True)
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)))


class ReturnIn(Strict):
    lines = fields.List(fields.Nested(ReturnLineIn), required=True, validate=validate.Length(min=1))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    resolution = fields.String(required=True, validate=validate.OneOf(["refund", "exchange"]))


class ReceiveReturnIn(Strict):
    location = fields.String(validate=validate.Length(min=1, max=64))
    restock = boolean(load_default=True)


class OrderQuery(Strict):
    status = fields.String(validate=validate.OneOf(STATUSES))
    channel = fields.String(validate=validate.Length(max=64))
    flag = fields.String(validate=validate.Length(max=64))
    customer = Int(validate=validate.Range(min=1))
    limit = Int(validate=validate.Range(min=1, max=500), load_default=50)
    cursor = fields.String(validate=validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor"))


class LineOut(Strict):
    id = Int()
    sku = fields.String()
    name = fields.String()
    quantity = Int()
    unit_price = Int()
    total = Int()
    backordered = Int()
    picked_quantity = Int()
    returned_quantity = Int()
    serials = fields.List(fields.String())


class TotalsOut(Strict):
    currency = fields.String()
    subtotal = Int()
    discount = Int()
    shipping = Int()
    tax = Int()
    total = Int()
    paid = Int()
    refunded = Int()


class CustomerRef(Strict):
    id = Int()
    email = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)


class PaymentOut(Strict):
    id = Int()
    provider = fields.String()
    amount = Int()
    currency = fields.String()
    status = fields.String()
    reference = fields.String(allow_none=True)
    refunded_amount = Int()
    fee = Int(allow_none=True)
    client_secret = fields.String(allow_none=True)
    created_at = fields.String()


class ShipmentOut(Strict):
    id = Int()
    carrier = fields.String()
    service = fields.String()
    tracking_number = fields.String(allow_none=True)
    tracking_url = fields.String(allow_none=True)
    estimated_delivery = fields.String(allow_none=True)
    status = fields.String()
    price = Int()
    label_url = fields.String()


class EventOut(Strict):
    kind = fields.String()
    message = fields.String()
    data = fields.Dict()
    at = fields.String()


class OrderOut(Strict):
    id = Int()
    number = fields.String()
    status = fields.String()
    allowed_actions = fields.List(fields.String())
    held_from = fields.String(allow_none=True)
    hold_reason = fields.String(allow_none=True)
    payment_status = fields.String()
    payment_provider = fields.String()
    channel = fields.String()
    external_id = fields.String(allow_none=True)
    flags = fields.List(fields.String())
    gift = fields.Boolean()
    coupon = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(LineOut))
    totals = fields.Nested(TotalsOut)
    customer = fields.Nested(CustomerRef)
    shipping_address = fields.Dict()
    payments = fields.List(fields.Nested(PaymentOut))
    shipments = fields.List(fields.Nested(ShipmentOut))
    events = fields.List(fields.Nested(EventOut))
    replacement_for = Int(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class OrderPage(Strict):
    items = fields.List(fields.Nested(OrderOut))
    next_cursor = fields.String(allow_none=True)


class RateOut(Strict):
    carrier = fields.String()
    service = fields.String()
    price = Int()
    currency = fields.String()
    estimated_delivery = fields.String(allow_none=True)


class ReturnOut(Strict):
    id = Int()
    order_id = Int()
    status = fields.String()
    reason = fields.String()
    resolution = fields.String()
    lines = fields.List(fields.Dict())
    refund_amount = Int()
    replacement_order_id = Int(allow_none=True)
    created_at = fields.String()


class CustomerOut(Strict):
    id = Int()
    email = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    addresses = fields.List(fields.Dict())
    preferences = fields.Dict()
    order_count = Int()
    total_spent = Int()
    currency = fields.String(allow_none=True)
    vip = fields.Boolean()
    history = fields.List(fields.Dict())
    created_at = fields.String()


class PluginOut(Strict):
    name = fields.String()
    module = fields.String()
    enabled = fields.Boolean()
    core = fields.Boolean()
    reason = fields.String(allow_none=True)
    hooks = fields.List(fields.String())
    version = fields.String(allow_none=True)
