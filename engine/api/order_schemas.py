"""The marshmallow schemas of orders: placement, the transitions' inputs, returns, and the order as answered."""

from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate

from engine.api.schema_fields import (
    SKU,
    Int,
    Scalar,
    Strict,
    boolean,
    count,
    mapping,
    money,
    positive_money,
    query_integer,
)
from engine.domain import locales
from engine.domain.flags import MAX_LENGTH as FLAG_MAX_LENGTH
from engine.domain.transitions import STATUSES


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


