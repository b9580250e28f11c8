"""marshmallow schemas of suppliers, purchase orders, reorder rules and stock alerts (issue #11)."""

from __future__ import annotations

from marshmallow import fields, validate

from engine.api.schemas import SKU, CurrencyCode, Int, Strict, count, integer, money, query_integer
from engine.domain.purchase_transitions import ACTIONS, STATUSES

CURSOR = [validate.Length(max=18), validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")]
UNITS = 1_000_000_000
LOCATION = validate.Length(min=1, max=64)


def _page(item):
    return type(f"{item.__name__.removesuffix('Out')}Page", (Strict,), {
        "items": fields.List(fields.Nested(item)), "next_cursor": fields.String(allow_none=True)})


class SupplierIn(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    phone = fields.String(allow_none=True, validate=validate.Length(max=64))
    currency = CurrencyCode(allow_none=True)
    lead_time_days = integer(0, 3650, metadata={"description": "days from ordering to delivery"})
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))


class SupplierPatch(SupplierIn):
    name = fields.String(validate=validate.Length(min=1, max=200))


class SupplierOut(Strict):
    id = Int()
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)
    lead_time_days = Int()
    notes = fields.String(allow_none=True)
    created_at = fields.String()


SupplierPage = _page(SupplierOut)


class PageQuery(Strict):
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=CURSOR)


class PurchaseOrderQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    supplier_id = query_integer(metadata={"description": "a supplier's id"})


class PurchaseLineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = integer(0, UNITS, required=True, metadata={"description": "units ordered; 0 removes the line (PATCH)"})
    unit_cost = money(allow_none=True, metadata={"description": "minor units, in the supplier's currency"})


class PurchaseOrderIn(Strict):
    supplier_id = integer(1, allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    lines = fields.List(fields.Nested(PurchaseLineIn), required=True, validate=validate.Length(max=1000),
                        metadata={"description": "may be empty: a draft to fill with PATCH"})


class PurchaseOrderPatch(Strict):
    """Only while draft. ``lines`` are upserted by sku (quantity 0 removes one); the others stay."""

    supplier_id = integer(1, allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    lines = fields.List(fields.Nested(PurchaseLineIn), validate=validate.Length(max=1000))


class PurchaseLineOut(Strict):
    id = Int()
    sku = fields.String()
    name = fields.String()
    quantity = Int()
    received = Int()
    damaged = Int()
    short = Int()
    over = Int()
    unit_cost = Int(allow_none=True)


class PurchaseOrderOut(Strict):
    id = Int()
    number = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    allowed_actions = fields.List(fields.String(validate=validate.OneOf(ACTIONS)))
    supplier_id = Int(allow_none=True, metadata={"description": "null: drafted for a product without a supplier"})
    supplier_name = fields.String(allow_none=True)
    reason = fields.String()
    notes = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(PurchaseLineOut))
    created_at = fields.String()
    ordered_at = fields.String(allow_none=True)
    expected_at = fields.String(allow_none=True, metadata={"description": "ordered_at + the supplier's lead time"})
    received_at = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)


PurchaseOrderPage = _page(PurchaseOrderOut)


class ReceiveLineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = integer(0, UNITS, metadata={"description": "good units; default: the number of serials"})
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)),
                          validate=validate.Length(max=10000), metadata={"description": "serial-tracked products"})
    damaged = integer(0, UNITS, load_default=0, metadata={"description": "arrived broken: recorded, not on hand"})


class ReceiveIn(Strict):
    lines = fields.List(fields.Nested(ReceiveLineIn), required=True, validate=validate.Length(min=1, max=1000))
    location = fields.String(validate=LOCATION, metadata={"description": "where the good units go (default MAIN)"})
    reference = fields.String(validate=validate.Length(max=150), metadata={"description": "e.g. the delivery note"})


class ReorderRuleIn(Strict):
    location = fields.String(allow_none=True, validate=LOCATION,
                             metadata={"description": "a location code; null: all locations together (the "
                                                      "product's own reorder_point and reorder_quantity)"})
    reorder_point = integer(0, UNITS, required=True)
    reorder_quantity = integer(0, UNITS, load_default=0, metadata={"description": "units to order per crossing"})
    max_level = count(allow_none=True, metadata={"description": "instead of reorder_quantity: order up to this "
                                                                "(minus available and units on open purchase orders)"})
    supplier_id = integer(1, allow_none=True)
    lead_time_days = integer(0, 3650, allow_none=True)


class ReorderRulesIn(Strict):
    rules = fields.List(fields.Nested(ReorderRuleIn), required=True, validate=validate.Length(max=1000))


class ReorderRuleOut(Strict):
    id = Int(allow_none=True, metadata={"description": "null: the product-wide rule was not stored yet"})
    location = fields.String(allow_none=True)
    reorder_point = Int()
    reorder_quantity = Int()
    max_level = Int(allow_none=True)
    supplier_id = Int(allow_none=True)
    lead_time_days = Int(allow_none=True)
    state = fields.String(validate=validate.OneOf(("above", "below")))
    crossed_at = fields.String(allow_none=True)


class ReorderRulesOut(Strict):
    sku = fields.String()
    rules = fields.List(fields.Nested(ReorderRuleOut))


class StockAlertQuery(PageQuery):
    sku = fields.String(validate=SKU)


class StockAlertOut(Strict):
    id = Int()
    sku = fields.String()
    location = fields.String(allow_none=True)
    available = Int()
    reorder_point = Int()
    recipients = fields.List(fields.String())
    purchase_order_id = Int(allow_none=True)
    created_at = fields.String()


StockAlertPage = _page(StockAlertOut)
