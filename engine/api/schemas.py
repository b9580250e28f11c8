"""marshmallow schemas: input validation at the edge (strict integers, unknown
fields rejected) and the documented shape of responses."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import RAISE, ValidationError, fields, post_load, validate

from engine.api.limits import INT64_MAX
from engine.domain import locales
from engine.domain import money as money_rules
from engine.domain.barcodes import PATTERN as BARCODE_PATTERN
from engine.domain.flags import MAX_LENGTH as FLAG_MAX_LENGTH
from engine.domain.money import MAX_AMOUNT
from engine.domain.transitions import STATUSES

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


# ---------------------------------------------------------------- products and stock


class ProductIn(Strict):
    sku = fields.String(required=True, validate=NEW_SKU)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    price = money(required=True, metadata={"description": "minor units (cents)"})
    currency = CurrencyCode(required=True)
    barcode = fields.String(validate=BARCODE, allow_none=True, metadata=BARCODE_DOC)
    track_serials = boolean(load_default=False)
    allow_backorder = boolean(load_default=False)
    reorder_point = integer(0, 1_000_000_000, load_default=0)
    reorder_quantity = integer(0, 1_000_000_000, load_default=0)
    weight_grams = integer(0, 1_000_000_000, load_default=0, metadata={"description": "at most 1,000 tonnes"})
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
    archived = fields.Boolean()
    archived_at = fields.String(allow_none=True)
    created_at = fields.String()


class ProductPatch(Strict):
    """The fields to change; the others stay. ``sku`` and ``currency`` cannot be changed."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    price = money(metadata={"description": "minor units; existing orders keep the price they were placed with"})
    barcode = fields.String(validate=BARCODE, allow_none=True,
                            metadata={"description": BARCODE_DOC["description"] + "; null removes it"})
    track_serials = boolean(metadata={"description": "only while the product has no stock and no serials (409)"})
    allow_backorder = boolean()
    reorder_point = integer(0, 1_000_000_000)
    reorder_quantity = integer(0, 1_000_000_000)
    weight_grams = integer(0, 1_000_000_000, metadata={"description": "at most 1,000 tonnes"})
    unit_cost = money(allow_none=True)
    archived = boolean(metadata={"description": "true retires the product: it can no longer be ordered or "
                                                "receive stock, its history stays; false brings it back"})


class ProductQuery(Strict):
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "a case-insensitive part of the sku, the name or the barcode"})
    archived = QueryBoolean(load_default=False, metadata={"description": "true: the archived products only; "
                                                                         "default false: the live ones"})
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=[validate.Length(max=18),
                                     validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")])


class ProductPage(Strict):
    items = fields.List(fields.Nested(ProductOut))
    next_cursor = fields.String(allow_none=True)


class StockReceiptIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(required=True)
    location = fields.String(validate=validate.Length(min=1, max=64))
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)), validate=validate.Length(max=10000))
    reference = fields.String(validate=validate.Length(max=200))
    unit_cost = money()
    generate = boolean(metadata={"description": "serial-tracked products: make the serials from the pattern "
                                                "(HOOKSHOP_SERIAL_PATTERN) instead of giving them; at most "
                                                "100,000 units"})
    serial_pattern = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "generate with this pattern instead of the configured one: {sku}, {yyyy}, {yy}, {mm}, "
                       "{seq} (e.g. {seq:06d}); an ISO 7064 Mod 37,36 check character is appended"})


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


class StockReceiptOut(StockOut):
    generated = fields.Dict(allow_none=True, metadata={
        "description": "a receipt with generate: {count, first, last, serials} — serials lists every generated "
                       "serial up to 1,000, else null (count, first and last still say what was made); "
                       "null for a receipt of given serials"})


# ---------------------------------------------------------------- orders

class AddressIn(Strict):
    """Which of ``city`` and ``postal_code`` a country needs (and the postcode's pattern) is checked at
    placement with Google's per-country address rules: Hong Kong and the UAE have no postcodes."""

    name = fields.String(validate=validate.Length(min=1, max=200), allow_none=True,
                         metadata={"description": "the recipient, when not the buyer (a gift)"})
    line1 = fields.String(required=True, validate=validate.Length(min=1, max=200))
    line2 = fields.String(validate=validate.Length(max=200), allow_none=True)
    city = fields.String(validate=validate.Length(max=100), allow_none=True)
    postal_code = fields.String(validate=validate.Length(max=20), allow_none=True,
                                metadata={"description": "required where the country uses postcodes"})
    country = fields.String(required=True, validate=[
        validate.Length(equal=2), validate.Regexp(r"^[A-Z]{2}$", error="an ISO 3166-1 alpha-2 code in capitals, e.g. DE")])
    region = fields.String(validate=validate.Length(max=100), allow_none=True)
    company = fields.String(validate=validate.Length(max=200), allow_none=True)
    email = fields.Email(validate=validate.Length(max=254), allow_none=True, metadata={
        "description": "the recipient's e-mail, when not the buyer (a gift): shipping news without prices"})


class CustomerIn(Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phone = fields.String(validate=[validate.Length(max=40),
                                    validate.Regexp(r"^\+?[0-9 ()./\-]{4,40}$", error="a phone number")],
                          allow_none=True)
    shipping_address = fields.Nested(AddressIn, required=True)
    preferences = mapping(fields.String(validate=validate.Length(min=1, max=64)), Scalar(), 50)


class LineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(required=True)
    gift = boolean(metadata={"description": "a thank-you gift: priced 0; allowed beside other lines, or on a gift "
                                            "order"})


def _locale_tag(value: str) -> None:
    try:
        locales.normalize(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


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
    billing_address = fields.Nested(AddressIn)  # the buyer's, when not the shipping address
    locale = fields.String(validate=[validate.Length(min=1, max=35), _locale_tag], metadata={
        "description": "the buyer's language, BCP 47 (en, tr, tr-TR): the language of the order's e-mails"})

    @post_load
    def _normalize_locale(self, data, **_kw):
        if data.get("locale"):
            data["locale"] = locales.normalize(data["locale"])
        return data


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
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)),
                          validate=validate.Length(max=10000))


class ReturnIn(Strict):
    lines = fields.List(fields.Nested(ReturnLineIn), required=True, validate=validate.Length(min=1, max=500))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    resolution = fields.String(required=True, validate=validate.OneOf(["refund", "exchange"]))


class ReceivedLineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(metadata={"description": "units of an untracked product (tracked ones: the serials)"})
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)),
                          validate=validate.Length(max=10000))
    condition = fields.String(required=True, validate=validate.OneOf(["resellable", "damaged"]),
                              metadata={"description": "resellable: back to stock (location); damaged: to the "
                                                       "quarantine location (RETURNS_QUARANTINE_LOCATION)"})


class ReceiveReturnIn(Strict):
    location = fields.String(validate=validate.Length(min=1, max=64),
                             metadata={"description": "where resellable units go (default MAIN)"})
    restock = boolean(load_default=True, metadata={"description": "false: nothing goes back on hand (written off)"})
    lines = fields.List(fields.Nested(ReceivedLineIn), validate=validate.Length(min=1, max=500),
                        metadata={"description": "the condition of the units named; units not named are resellable"})
    refund_amount = money(metadata={"description": "a refund other than the lines' share (partial, or with "
                                                   "shipping); never above paid minus refunded (409)"})


class RejectReturnIn(Strict):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class CustomerReturnIn(Strict):
    order_number = fields.String(required=True, validate=validate.Length(min=1, max=20))
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    lines = fields.List(fields.Nested(ReturnLineIn), required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    resolution = fields.String(required=True, validate=validate.OneOf(["refund", "exchange"]))


class OrderQuery(Strict):
    status = fields.String(validate=validate.OneOf(STATUSES))
    channel = fields.String(validate=validate.Length(max=64))
    flag = fields.String(validate=validate.Length(max=FLAG_MAX_LENGTH))
    customer = query_integer(metadata={"description": "a customer id"})
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=[validate.Length(max=18),
                                     validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")])


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
    gift = fields.Boolean(metadata={"description": "a zero-priced thank-you gift line"})
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


class TaxLineOut(Strict):
    title = fields.String()
    rate = fields.String(allow_none=True, metadata={"description": "a decimal fraction, \"0.19\""})
    amount = Int()
    shipping_amount = Int(metadata={"description": "the part of amount charged on shipping, when the channel said"})


class NonStockLineOut(Strict):
    kind = fields.String(metadata={"description": "gift_card, tip, fee, custom or no_shipping"})
    title = fields.String()
    sku = fields.String(allow_none=True)
    quantity = Int()
    unit_price = Int()
    total = Int()
    requires_shipping = fields.Boolean()


class TaxOut(Strict):
    status = fields.String(metadata={"description": "exclusive, inclusive, inclusive_unknown, none, not_given"})
    prices_include_tax = fields.Boolean()
    lines = fields.List(fields.Nested(TaxLineOut))


class PresentmentOut(Strict):
    currency = fields.String()
    subtotal = Int(allow_none=True)
    discount = Int(allow_none=True)
    shipping = Int(allow_none=True)
    tax = Int(allow_none=True)
    total = Int(allow_none=True)


class CustomerRef(Strict):
    id = Int()
    email = fields.String(allow_none=True)
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


class RefundOut(Strict):
    id = Int()
    payment_id = Int()
    amount = Int()
    status = fields.String(metadata={"description": "pending (reserved, the provider is being called), succeeded, "
                                                    "failed (released), superseded (recorded from the provider)"})
    reference = fields.String(allow_none=True)
    reason = fields.String()
    return_id = Int(allow_none=True)
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
    locale = fields.String(allow_none=True, metadata={"description": "the buyer's language (BCP 47), if known"})
    coupon = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(LineOut))
    totals = fields.Nested(TotalsOut)
    customer = fields.Nested(CustomerRef)
    shipping_address = fields.Dict(allow_none=True, metadata={"description": "with the recipient's name"})
    billing_address = fields.Dict(allow_none=True)
    non_stock_lines = fields.List(fields.Nested(NonStockLineOut))
    tax = fields.Nested(TaxOut)
    presentment = fields.Nested(PresentmentOut, metadata={
        "description": "what the buyer was charged in their currency (the totals' when it is the shop's)"})
    payments = fields.List(fields.Nested(PaymentOut))
    refunds = fields.List(fields.Nested(RefundOut))
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
    status = fields.String(metadata={"description": "requested, approved, rejected, received or resolved"})
    allowed_actions = fields.List(fields.String())
    source = fields.String(metadata={"description": "staff (the API) or customer (the public request page)"})
    reason = fields.String()
    resolution = fields.String()
    lines = fields.List(fields.Dict())
    received_lines = fields.List(fields.Dict(), allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    refund_amount = Int()
    replacement_order_id = Int(allow_none=True)
    created_at = fields.String()
    approved_at = fields.String(allow_none=True)
    rejected_at = fields.String(allow_none=True)
    received_at = fields.String(allow_none=True)
    resolved_at = fields.String(allow_none=True)


class CustomerReturnOut(Strict):
    id = Int()
    order_number = fields.String()
    status = fields.String()
    resolution = fields.String()
    lines = fields.List(fields.Dict())
    created_at = fields.String()


class CustomerOut(Strict):
    id = Int()
    email = fields.String(allow_none=True)
    name = fields.String()
    phone = fields.String(allow_none=True)
    addresses = fields.List(fields.Dict())
    preferences = fields.Dict()
    order_count = Int()
    total_spent = Int(metadata={"description": "spent in the profile's currency (its first order's)"})
    total_spent_by_currency = fields.Dict(keys=fields.String(), values=Int(),
                                          metadata={"description": "spent per currency: {\"EUR\": 125000}"})
    currency = fields.String(allow_none=True)
    vip = fields.Boolean(metadata={"description": "staff's word (vip_by_staff) when given, else the rule's"})
    history = fields.List(fields.Dict())
    created_at = fields.String()
    # issue #12: B2B, language, statistics per currency, preferred services, merge
    company = fields.String(allow_none=True)
    tax_id = fields.String(allow_none=True)
    tax_id_checked = fields.Boolean(metadata={"description": "the tax id's format was checked (python-stdnum)"})
    locale = fields.String(allow_none=True, metadata={"description": "the customer's language (Babel), e.g. tr"})
    billing_address = fields.Dict(allow_none=True)
    notes = fields.String(allow_none=True)
    orders_by_currency = fields.Dict(keys=fields.String(), values=Int())
    average_by_currency = fields.Dict(keys=fields.String(), values=Int(),
                                      metadata={"description": "spent / orders per currency, rounded down"})
    vip_by_staff = fields.Boolean(allow_none=True, metadata={"description": "null: the rule decides"})
    first_order_at = fields.String(allow_none=True)
    last_order_at = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    channel_customer_id = fields.String(allow_none=True)
    merged_into = Int(allow_none=True, metadata={"description": "a merged duplicate: the survivor's id"})
    merged_at = fields.String(allow_none=True)
    preferred_payment_provider = fields.String(allow_none=True)
    preferred_delivery_service = fields.Dict(allow_none=True, metadata={"description": "{carrier, service}"})


class PluginSettingOut(Strict):
    name = fields.String(metadata={"description": "the environment variable (HOOKSHOP_<PREFIX>_<NAME>)"})
    type = fields.String()
    required = fields.Boolean()
    doc = fields.String()
    default = fields.String(allow_none=True)
    set = fields.Boolean(metadata={"description": "whether the environment or the TOML file sets it"})
    value = fields.String(allow_none=True, metadata={"description": "the current value; a secret's is ********"})
    problem = fields.String(allow_none=True, metadata={"description": "why the value cannot be used"})


class PluginOut(Strict):
    name = fields.String()
    module = fields.String()
    enabled = fields.Boolean()
    core = fields.Boolean()
    reason = fields.String(allow_none=True)
    hooks = fields.List(fields.String())
    version = fields.String(allow_none=True)
    settings = fields.List(fields.Nested(PluginSettingOut), metadata={"description": "the settings it declares"})
    missing_settings = fields.List(fields.String(), metadata={"description": "required settings not set"})
