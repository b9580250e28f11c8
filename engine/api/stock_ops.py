"""Stock adjustments, cycle counts and the reconciliation."""

from __future__ import annotations

import csv
import io

import marshmallow as ma
from flask import Response, request
from flask.views import MethodView
from marshmallow import fields, validate

from engine.api import Blueprint, idempotent
from engine.api.schemas import SKU, StockOut, Strict, integer
from engine.models.stock import ADJUSTMENT_REASONS
from engine.services import adjustments, counts, reconciliation

blp = Blueprint("stock_ops", __name__, url_prefix="/api/v1",
                description="Adjustments, cycle counts and the reconciliation of stock")

LOCATION = validate.Length(min=1, max=64)


def staff_field() -> fields.String:
    """The ``staff`` field of each stock operation (a new field per schema)."""
    return fields.String(required=True, validate=validate.Length(min=1, max=254),
                         metadata={"description": "who does it: the staff member's e-mail or name, recorded as given"})


SERIAL = fields.String(validate=validate.Length(min=1, max=128))


class AdjustmentIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    location = fields.String(validate=LOCATION, metadata={"description": "default MAIN"})
    quantity = integer(-1_000_000, 1_000_000, metadata={
        "description": "signed, not 0: negative takes units away (damage, loss), positive adds (found); "
                       "serial-tracked products may leave it out and name the serials"})
    serials = fields.List(SERIAL, validate=validate.Length(min=1, max=10000))
    reason = fields.String(required=True, validate=validate.OneOf(ADJUSTMENT_REASONS))
    staff = staff_field()
    note = fields.String(validate=validate.Length(max=500))


class AdjustmentOut(Strict):
    id = fields.Integer()
    sku = fields.String()
    location = fields.String()
    quantity = fields.Integer()
    reason = fields.String()
    staff = fields.String()
    note = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    serials = fields.List(fields.String())
    created_at = fields.String()
    stock = fields.Nested(StockOut)


class CountOpenIn(Strict):
    location = fields.String(required=True, validate=LOCATION)
    skus = fields.List(fields.String(validate=SKU), validate=validate.Length(min=1, max=10000),
                       metadata={"description": "only these products (default: every product at the location)"})
    staff = staff_field()
    note = fields.String(validate=validate.Length(max=500))


class CountLineIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    counted = integer(0, 1_000_000, required=True)


class CountScansIn(Strict):
    scans = fields.List(fields.String(validate=validate.Length(min=1, max=128)), validate=validate.Length(max=10000),
                        metadata={"description": "one per unit: a serial, a barcode or a sku (added to the tally)"})
    lines = fields.List(fields.Nested(CountLineIn), validate=validate.Length(max=10000),
                        metadata={"description": "counted quantities of untracked products (replace the tally)"})


class StaffIn(Strict):
    staff = staff_field()


class CountLineOut(Strict):
    sku = fields.String()
    expected_at_open = fields.Integer()
    moved_since_open = fields.Integer()
    expected = fields.Integer(metadata={"description": "expected_at_open + moved_since_open"})
    on_hand = fields.Integer()
    counted = fields.Integer()
    difference = fields.Integer(metadata={"description": "counted - expected"})
    posted_difference = fields.Integer(allow_none=True)
    missing = fields.List(fields.String())
    unexpected = fields.List(fields.String())


class CountMovementOut(Strict):
    id = fields.Integer()
    sku = fields.String()
    quantity = fields.Integer()
    kind = fields.String()
    reference = fields.String(allow_none=True)
    created_at = fields.String()


class CountOut(Strict):
    id = fields.Integer()
    location = fields.String()
    status = fields.String(metadata={"description": "open, posted or cancelled"})
    whole_location = fields.Boolean()
    opened_by = fields.String()
    opened_at = fields.String()
    closed_by = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    allowed_actions = fields.List(fields.String())
    lines = fields.List(fields.Nested(CountLineOut))
    differences = fields.Integer()
    movements_since_open = fields.List(fields.Nested(CountMovementOut))


class DifferenceOut(Strict):
    sku = fields.String()
    location = fields.String()
    check = fields.String(metadata={"description": "ledger, serials or reservations"})
    level = fields.Integer()
    actual = fields.Integer()
    difference = fields.Integer()
    message = fields.String()


class ReconciliationOut(Strict):
    ok = fields.Boolean()
    products = fields.Integer()
    levels = fields.Integer()
    differences = fields.List(fields.Nested(DifferenceOut))


class ReconciliationQuery(Strict):
    format = fields.String(validate=validate.OneOf(["json", "csv"]))


@blp.route("/stock/adjustments")
class Adjustments(MethodView):
    @blp.arguments(AdjustmentIn)
    @blp.alt_response(201, schema=AdjustmentOut, success=True, description="the adjustment and the stock after it")
    @blp.alt_response(409, schema="Error", description="below_reserved (on hand cannot drop below reserved); "
                      "serial_not_in_stock, serial_on_hand, serial_not_scrapped, serial_elsewhere")
    @blp.alt_response(422, schema="Error", description="validation_error: unknown sku or location, quantity 0 or "
                      "of the wrong sign for the reason, serials missing or repeated or unknown")
    @idempotent
    def post(self, data):
        """Adjust stock: count correction, damage, loss or found (reason and staff required)"""
        return adjustments.adjust_stock(data["sku"], reason=data["reason"], staff=data["staff"],
                                        quantity=data.get("quantity"), serials=data.get("serials"),
                                        location=data.get("location"), note=data.get("note")), 201


@blp.route("/stock/counts")
class Counts(MethodView):
    @blp.arguments(CountOpenIn)
    @blp.alt_response(201, schema=CountOut, success=True, description="the open count and what it expects")
    @blp.alt_response(409, schema="Error", description="count_open: the location has an open count")
    @blp.alt_response(422, schema="Error", description="unknown location or skus")
    @idempotent
    def post(self, data):
        """Open a cycle count of a location (snapshot of the expected stock)"""
        return counts.open_count(data["location"], data["staff"], data.get("skus"), data.get("note")), 201


@blp.route("/stock/counts/<int:count_id>")
class CountItem(MethodView):
    @blp.alt_response(200, schema=CountOut, success=True, description="expected vs counted, serials, movements")
    @blp.alt_response(404, schema="Error", description="no such count")
    def get(self, count_id):
        """Review a count: differences per product, missing and unexpected serials, movements since it opened"""
        return counts.review(count_id)


@blp.route("/stock/counts/<int:count_id>/scans")
class CountScans(MethodView):
    @blp.arguments(CountScansIn)
    @blp.alt_response(200, schema=CountOut, success=True, description="the count with the scans added")
    @blp.alt_response(404, schema="Error", description="no such count")
    @blp.alt_response(409, schema="Error", description="illegal_transition: the count is posted or cancelled")
    @blp.alt_response(422, schema="Error", description="scans or lines that cannot be counted (per index)")
    def post(self, data, count_id):
        """Submit scans or counted quantities (repeatable; nothing is recorded if one entry is wrong)"""
        return counts.submit(count_id, data.get("scans"), data.get("lines"))


@blp.route("/stock/counts/<int:count_id>/post")
class CountPost(MethodView):
    @blp.arguments(StaffIn)
    @blp.alt_response(200, schema=CountOut, success=True, description="the posted count")
    @blp.alt_response(404, schema="Error", description="no such count")
    @blp.alt_response(409, schema="Error", description="illegal_transition; below_reserved; a serial that "
                      "cannot be adjusted (picked, on hand elsewhere, shipped)")
    def post(self, data, count_id):
        """Post the differences as count_correction adjustments"""
        return counts.post_count(count_id, data["staff"])


@blp.route("/stock/counts/<int:count_id>/cancel")
class CountCancel(MethodView):
    @blp.arguments(StaffIn)
    @blp.alt_response(200, schema=CountOut, success=True, description="the cancelled count")
    @blp.alt_response(404, schema="Error", description="no such count")
    @blp.alt_response(409, schema="Error", description="illegal_transition: the count is posted or cancelled")
    def post(self, data, count_id):
        """Cancel a count (stock does not change)"""
        return counts.cancel_count(count_id, data["staff"])


@blp.route("/stock/reconciliation")
class Reconciliation(MethodView):
    @blp.arguments(ReconciliationQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=ReconciliationOut, success=True,
                      description="every difference (ok: true when there is none); CSV with Accept: text/csv or "
                                  "format=csv", content_type="application/json")
    @blp.doc(responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
    def get(self, query):
        """Reconcile levels with the ledger, serial units and open reservations"""
        result = reconciliation.reconcile()
        wants_csv = query.get("format") == "csv" or (
            "format" not in query and request.accept_mimetypes.best_match(["application/json", "text/csv"])
            == "text/csv")
        if wants_csv:
            return Response(to_csv(result["differences"]), mimetype="text/csv")
        return result


def to_csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=reconciliation.FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
