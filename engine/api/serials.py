"""Serial units (status, history), label sheets (PDF) and scan-anything."""

from __future__ import annotations

import marshmallow as ma
from flask import Response
from marshmallow import fields, validate

from engine.api import Blueprint
from engine.api.schemas import Int, Strict, query_integer
from engine.errors import NotFound
from engine.models.stock import SERIAL_STATUSES
from engine.services import labels, scan, serials

blp = Blueprint("serials", __name__, url_prefix="/api/v1", description="Serial units, labels and scanning")

SERIAL = "code_path"  # serials and codes may hold a slash (location paths such as MAIN/A-01-3): bounded
MAX_CODE = 200


class SerialQuery(Strict):
    sku = fields.String(validate=validate.Length(min=1, max=64),
                        metadata={"description": "which product's unit, when two products share the serial"})


class SerialEventOut(Strict):
    at = fields.String()
    kind = fields.String(metadata={"description": "received, reserved, released, picked, unpicked, shipped, "
                                                  "returned, restocked, quarantined, transferred, adjusted, scrapped"})
    status = fields.String(metadata={"description": "the unit's status after the event"})
    location = fields.String(allow_none=True)
    order_number = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)


class SerialOut(Strict):
    serial = fields.String()
    sku = fields.String()
    status = fields.String(metadata={"description": ", ".join(SERIAL_STATUSES)})
    location = fields.String(allow_none=True)
    order_id = Int(allow_none=True)
    order_number = fields.String(allow_none=True)
    received_at = fields.String(allow_none=True)
    history = fields.List(fields.Nested(SerialEventOut))


class SerialListQuery(Strict):
    status = fields.String(validate=validate.OneOf(SERIAL_STATUSES))
    limit = query_integer(1, 500, load_default=100)
    cursor = fields.String(validate=[validate.Length(max=18),
                                     validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")])


class SerialItem(Strict):
    serial = fields.String()
    status = fields.String()
    location = fields.String()


class SerialPage(Strict):
    items = fields.List(fields.Nested(SerialItem))
    next_cursor = fields.String(allow_none=True)


class ProductLabelQuery(Strict):
    serials = fields.String(validate=validate.OneOf(["in_stock"]), metadata={
        "description": "in_stock: one label per serial unit in stock (instead of the product's label)"})
    copies = query_integer(1, 1000, load_default=1, metadata={"description": "the product's label this many times"})


class LocationLabelQuery(Strict):
    prefix = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "every location whose code starts with it, e.g. MAIN/A"})


class ScanMatch(Strict):
    code = fields.String()
    kind = fields.String(metadata={"description": "serial, product, location, order"})
    id = Int()
    summary = fields.String()
    url = fields.String()


class ScanOut(ScanMatch):
    class Meta:
        unknown = ma.INCLUDE

    ambiguous = fields.Boolean(metadata={"description": "more than one thing has this code: see matches"})
    matches = fields.List(fields.Nested(ScanMatch(unknown=ma.INCLUDE)))


def _bounded(code: str) -> None:
    if len(code) > MAX_CODE:
        raise NotFound(f"no code is longer than {MAX_CODE} characters", code="unknown_code")


def _pdf(body: bytes, name: str) -> Response:
    return Response(body, mimetype="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


@blp.route(f"/serials/<{SERIAL}:serial>")
@blp.arguments(SerialQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=SerialOut, success=True, description="the unit and its history, oldest first")
@blp.alt_response(404, schema="Error", description="no unit has this serial")
@blp.alt_response(409, schema="Error", description="serial_ambiguous: units of several products have this serial; "
                  "errors.sku lists them: ask again with ?sku=")
def get_serial(query, serial):
    """A serial unit: product, status, location, order, history"""
    _bounded(serial)
    return serials.get_serial(serial, query.get("sku"))


@blp.route(f"/serials/<{SERIAL}:serial>/label.pdf")
@blp.arguments(SerialQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=None, success=True, description="one Code128 label (application/pdf)")
@blp.alt_response(404, schema="Error", description="no unit has this serial")
@blp.alt_response(409, schema="Error", description="serial_ambiguous: add ?sku=")
def serial_label(query, serial):
    """The label of one serial unit"""
    _bounded(serial)
    return _pdf(labels.sheet(labels.serial_labels(serial, query.get("sku"))), "serial-label.pdf")


@blp.route("/products/<string(maxlength=64):sku>/serials")
@blp.arguments(SerialListQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=SerialPage, success=True, description="oldest first, cursor paginated")
@blp.alt_response(404, schema="Error", description="no such product")
def product_serials(query, sku):
    """The product's serial units, optionally in one status"""
    items, next_cursor = serials.list_serials(sku, query.get("status"), query["limit"],
                                              int(query["cursor"]) if query.get("cursor") else None)
    return {"items": items, "next_cursor": str(next_cursor) if next_cursor else None}


@blp.route("/products/<string(maxlength=64):sku>/labels.pdf")
@blp.arguments(ProductLabelQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=None, success=True, description="a Code128 label sheet (application/pdf)")
@blp.alt_response(404, schema="Error", description="no such product; no_labels: no serial unit in stock")
@blp.alt_response(422, schema="Error", description="serials=in_stock for a product that does not track serials")
def product_labels(query, sku):
    """Labels of a product: its barcode (or sku) ``copies`` times, or one per serial unit in stock"""
    rows = labels.product_labels(sku, serials=query.get("serials") == "in_stock", copies=query["copies"])
    return _pdf(labels.sheet(rows), f"{sku}-labels.pdf")


@blp.route("/locations/labels.pdf")
@blp.arguments(LocationLabelQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=None, success=True, description="a Code128 label sheet (application/pdf)")
@blp.alt_response(404, schema="Error", description="no_labels: no location code starts with the prefix")
def location_labels(query):
    """Bin labels: one per location whose code starts with ``prefix``"""
    rows = labels.location_labels(query["prefix"])
    return _pdf(labels.sheet(rows), "locations.pdf")


@blp.route(f"/scan/<{SERIAL}:code>")
@blp.alt_response(200, schema=ScanOut, success=True, description="what the code is: the first match's fields, "
                  "and every match (an ambiguous code has several)")
@blp.alt_response(404, schema="Error", description="unknown_code: nothing has this code")
def scan_code(code):
    """Scan anything: a serial, product barcode or sku, location or order number"""
    _bounded(code)
    return scan.scan(code)
