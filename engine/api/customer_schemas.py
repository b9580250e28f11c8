"""Schemas of customer profiles (search, staff edits, merge) and of coupons."""

from __future__ import annotations

from datetime import UTC

from marshmallow import fields, validate

from engine.api.schemas import (
    AddressIn,
    CurrencyCode,
    CustomerOut,
    QueryBoolean,
    Scalar,
    Strict,
    boolean,
    integer,
    mapping,
    money,
    query_integer,
)

CURSOR = [validate.Length(max=18), validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")]
COUPON_CODE = [validate.Length(min=1, max=64),
               validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", error="letters, digits, _ and - only")]


class CustomerQuery(Strict):
    q = fields.String(validate=validate.Length(min=1, max=100),
                      metadata={"description": "a case-insensitive part of the name, e-mail, company or phone"})
    vip = QueryBoolean(metadata={"description": "true: vip customers only; false: the others"})
    merged = QueryBoolean(load_default=False, metadata={"description": "true: merged duplicates (tombstones)"})
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=CURSOR)


class CustomerSummaryOut(CustomerOut):
    class Meta(Strict.Meta):
        exclude = ("history", "preferred_payment_provider", "preferred_delivery_service")


class CustomerPage(Strict):
    items = fields.List(fields.Nested(CustomerSummaryOut))
    next_cursor = fields.String(allow_none=True)


class CustomerPatch(Strict):
    name = fields.String(validate=validate.Length(min=1, max=200))
    phone = fields.String(validate=[validate.Length(max=40),
                                    validate.Regexp(r"^\+?[0-9 ()./\-]{4,40}$", error="a phone number")],
                          allow_none=True)
    company = fields.String(validate=validate.Length(min=1, max=200), allow_none=True)
    tax_id = fields.String(validate=validate.Length(min=1, max=64), allow_none=True, metadata={
        "description": "checked with python-stdnum where the country's format is known (an EU VAT prefix, or "
                       "the billing address's country), stored compact; else kept as given"})
    billing_address = fields.Nested(AddressIn)  # the default billing address, replaced whole
    notes = fields.String(validate=validate.Length(max=10000), allow_none=True)
    locale = fields.String(validate=validate.Length(min=2, max=35), allow_none=True,
                           metadata={"description": "a language Babel knows: de, tr, en_GB (en-GB is accepted)"})
    vip = boolean(allow_none=True, metadata={"description": "true or false: staff's word over the rule; null: "
                                                            "the rule decides again"})
    preferences = mapping(fields.String(validate=validate.Length(min=1, max=64)), Scalar(), 50)


class MergeIn(Strict):
    from_ = fields.List(integer(1), data_key="from", required=True, validate=validate.Length(min=1, max=50),
                        metadata={"description": "the duplicates' ids: merged into this customer"})


class MergeOut(CustomerOut):
    merged = fields.List(fields.Integer(), metadata={"description": "the ids merged by this call (empty: a replay)"})


def _when(**kw):
    return fields.AwareDateTime(format="iso", default_timezone=UTC, allow_none=True, **kw)


class CouponIn(Strict):
    code = fields.String(required=True, validate=COUPON_CODE,
                         metadata={"description": "unique case-insensitively"})
    kind = fields.String(required=True, validate=validate.OneOf(["percentage", "fixed_amount", "free_shipping"]))
    value = money(metadata={"description": "percentage: 1 to 100; fixed_amount: minor units; free_shipping: none"})
    currency = CurrencyCode(allow_none=True, metadata={"description": "required for fixed_amount; else limits the "
                                                                      "coupon to orders in that currency"})
    category = fields.String(validate=validate.Length(min=1, max=64),
                             metadata={"description": "the flag coupon:<category> (default: the code in lower case)"})
    valid_from = _when()
    valid_until = _when()
    usage_limit = integer(1, 1_000_000_000, allow_none=True, metadata={"description": "uses in total; null: no limit"})
    per_customer_limit = integer(1, 1_000_000, allow_none=True)
    active = boolean(load_default=True)


class CouponPatch(Strict):
    kind = fields.String(validate=validate.OneOf(["percentage", "fixed_amount", "free_shipping"]))
    value = money()
    currency = CurrencyCode(allow_none=True)
    category = fields.String(validate=validate.Length(min=1, max=64))
    valid_from = _when()
    valid_until = _when()
    usage_limit = integer(1, 1_000_000_000, allow_none=True)
    per_customer_limit = integer(1, 1_000_000, allow_none=True)
    active = boolean()


class CouponOut(Strict):
    code = fields.String()
    kind = fields.String()
    value = fields.Integer()
    currency = fields.String(allow_none=True)
    category = fields.String()
    valid_from = fields.String(allow_none=True)
    valid_until = fields.String(allow_none=True)
    usage_limit = fields.Integer(allow_none=True)
    per_customer_limit = fields.Integer(allow_none=True)
    used_count = fields.Integer(metadata={"description": "uses not given back (a cancelled order gives its use back)"})
    remaining = fields.Integer(allow_none=True)
    active = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class CouponQuery(Strict):
    active = QueryBoolean()
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=CURSOR)


class CouponPage(Strict):
    items = fields.List(fields.Nested(CouponOut))
    next_cursor = fields.String(allow_none=True)
