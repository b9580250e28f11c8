"""marshmallow schemas: input validation at the edge (strict integers, unknown
fields rejected) and the documented shape of responses."""

from __future__ import annotations

from marshmallow import fields, validate

from engine.api.order_schemas import (
    AddressIn,
    CustomerIn,
    CustomerRef,
    CustomerReturnIn,
    CustomerReturnOut,
    EventOut,
    HoldIn,
    LineIn,
    LineOut,
    NonStockLineOut,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderQuery,
    PayIn,
    PaymentOut,
    PresentmentOut,
    RateOut,
    ReasonIn,
    ReceivedLineIn,
    ReceiveReturnIn,
    RefundIn,
    RefundOut,
    RejectReturnIn,
    ReturnIn,
    ReturnLineIn,
    ReturnOut,
    ScansIn,
    ShipIn,
    ShipmentOut,
    TaxLineOut,
    TaxOut,
    TotalsOut,
)
from engine.api.schema_fields import (
    BARCODE,
    BARCODE_DOC,
    CURRENCY,
    NEW_SKU,
    SKU,
    CurrencyCode,
    ErrorSchema,
    Int,
    QueryBoolean,
    QueryInteger,
    Scalar,
    Strict,
    StrictBoolean,
    boolean,
    count,
    integer,
    mapping,
    money,
    positive_money,
    query_integer,
)

__all__ = [
    "AddressIn",
    "BARCODE",
    "BARCODE_DOC",
    "CURRENCY",
    "CurrencyCode",
    "CustomerIn",
    "CustomerOut",
    "CustomerRef",
    "CustomerReturnIn",
    "CustomerReturnOut",
    "ErrorSchema",
    "EventOut",
    "HoldIn",
    "Int",
    "LineIn",
    "LineOut",
    "LocationStock",
    "NEW_SKU",
    "NonStockLineOut",
    "OrderIn",
    "OrderOut",
    "OrderPage",
    "OrderQuery",
    "PayIn",
    "PaymentOut",
    "PluginOut",
    "PluginSettingOut",
    "PresentmentOut",
    "ProductIn",
    "ProductOut",
    "ProductPage",
    "ProductPatch",
    "ProductQuery",
    "QueryBoolean",
    "QueryInteger",
    "RateOut",
    "ReasonIn",
    "ReceiveReturnIn",
    "ReceivedLineIn",
    "RefundIn",
    "RefundOut",
    "RejectReturnIn",
    "ReturnIn",
    "ReturnLineIn",
    "ReturnOut",
    "SKU",
    "Scalar",
    "ScansIn",
    "ShipIn",
    "ShipmentOut",
    "StockOut",
    "StockReceiptIn",
    "StockReceiptOut",
    "Strict",
    "StrictBoolean",
    "TaxLineOut",
    "TaxOut",
    "TotalsOut",
    "boolean",
    "count",
    "integer",
    "mapping",
    "money",
    "positive_money",
    "query_integer",
]


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


# ---------------------------------------------------------------- customers and plugins (orders: order_schemas.py)


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
