"""Locations, stock transfers and the pick list (issue #11, warehouse)."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import fields, validate

from engine.api import Blueprint, idempotent
from engine.api.schemas import SKU, Strict, boolean, count, integer, query_integer
from engine.domain import locations as rules
from engine.errors import ValidationFailed
from engine.services import locations

blp = Blueprint("locations", __name__, url_prefix="/api/v1", description="Locations, transfers and pick lists")

PATH = [validate.Length(min=1, max=rules.MAX_PATH)]
PATH_DOC = {"description": rules.FORMAT}


class LocationIn(Strict):
    path = fields.String(required=True, validate=PATH, metadata=PATH_DOC)
    name = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "default: the path"})
    kind = fields.String(validate=validate.OneOf(rules.KINDS),
                         metadata={"description": "default: warehouse for a one-segment path, else bin"})
    pickable = boolean(metadata={"description": "whether orders are given stock here; default: true for "
                                                "warehouses and bins (inside a pickable place), else false; "
                                                "a quarantine location never is"})


class LocationPatch(Strict):
    name = fields.String(validate=validate.Length(min=1, max=200))
    pickable = boolean(metadata={"description": "existing reservations stay; new orders skip a non-pickable "
                                                "location"})


class LocationQuery(Strict):
    warehouse = fields.String(validate=validate.Length(min=1, max=rules.MAX_SEGMENT),
                              metadata={"description": "a warehouse code: it and the locations inside it"})
    kind = fields.String(validate=validate.OneOf(rules.KINDS))
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=validate.Length(min=1, max=rules.MAX_PATH),
                           metadata={"description": "the previous page's next_cursor"})


class LocationOut(Strict):
    path = fields.String()
    name = fields.String()
    kind = fields.String()
    warehouse = fields.String()
    parent = fields.String(allow_none=True)
    pickable = fields.Boolean()
    on_hand = integer()
    reserved = integer()
    available = integer()


class LocationStockOut(Strict):
    sku = fields.String()
    name = fields.String()
    on_hand = integer()
    reserved = integer()
    available = integer()


class LocationDetailOut(LocationOut):
    stock = fields.List(fields.Nested(LocationStockOut))
    stock_truncated = fields.Boolean(metadata={"description": "true when more than 1000 products are held there"})


class LocationPage(Strict):
    items = fields.List(fields.Nested(LocationOut))
    next_cursor = fields.String(allow_none=True)


class TransferIn(Strict):
    sku = fields.String(required=True, validate=SKU)
    quantity = count(metadata={"description": "units to move (untracked products); with serials it must "
                                              "equal their number"})
    serials = fields.List(fields.String(validate=validate.Length(min=1, max=128)),
                          validate=validate.Length(min=1, max=10000),
                          metadata={"description": "serial-tracked products: the units to move"})
    source = fields.String(required=True, data_key="from", validate=PATH, metadata=PATH_DOC)
    destination = fields.String(required=True, data_key="to", validate=PATH, metadata=PATH_DOC)
    reference = fields.String(validate=validate.Length(max=200))

    @ma.validates_schema
    def _quantity_or_serials(self, data, **_kw):
        if "quantity" not in data and "serials" not in data:
            raise ma.ValidationError("quantity or serials is required", "quantity")


class TransferOut(Strict):
    id = integer()
    sku = fields.String()
    source = fields.String(data_key="from")
    destination = fields.String(data_key="to")
    quantity = integer()
    serials = fields.List(fields.String())
    reference = fields.String(allow_none=True)
    created_at = fields.String()


class StopOut(Strict):
    location = fields.String()
    kind = fields.String()
    sku = fields.String()
    name = fields.String()
    barcode = fields.String(allow_none=True)
    quantity = integer(metadata={"description": "units reserved for the order here"})
    picked = integer(metadata={"description": "of them already scanned into the order"})
    to_pick = integer()
    serials = fields.List(fields.String(), metadata={
        "description": "serial-tracked products: the units held for the order here, oldest first (scan these; "
                       "another in-stock unit of the product at this location is swapped in)"})


class PickListOut(Strict):
    order_id = integer()
    number = fields.String()
    status = fields.String()
    flags = fields.List(fields.String())
    vip = fields.Boolean()
    gift = fields.Boolean()
    units = integer()
    to_pick = integer()
    stops = fields.List(fields.Nested(StopOut), metadata={"description": "in walk order: location path, then sku"})


@blp.route("/locations")
class Locations(MethodView):
    @blp.arguments(LocationQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=LocationPage, success=True, description="in path order, cursor paginated")
    def get(self, query):
        """List locations with their stock totals (filter by warehouse and kind)"""
        items, next_cursor = locations.list_locations(warehouse=query.get("warehouse"), kind=query.get("kind"),
                                                      limit=query["limit"], cursor=query.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(LocationIn)
    @blp.alt_response(201, schema=LocationOut, success=True, description="the location")
    @blp.alt_response(409, schema="Error", description="location_exists")
    @blp.alt_response(422, schema="Error", description="invalid_location (the path format), unknown_location (the "
                      "location it would be inside does not exist), validation_error (kind or pickable)")
    @idempotent
    def post(self, data):
        """Create a warehouse or a location inside one (a bin, receiving, quarantine, staging)"""
        location = locations.create_location(data["path"], data.get("name"), data.get("kind"), data.get("pickable"))
        return locations.describe(location), 201


@blp.route("/locations/<location_path:path>")
class LocationItem(MethodView):
    @blp.alt_response(200, schema=LocationDetailOut, success=True, description="the location and its stock")
    @blp.alt_response(404, schema="Error", description="no such location")
    def get(self, path):
        """A location and the stock held there"""
        return locations.get_location(path)

    @blp.arguments(LocationPatch)
    @blp.alt_response(200, schema=LocationDetailOut, success=True, description="the changed location")
    @blp.alt_response(404, schema="Error", description="no such location")
    @blp.alt_response(422, schema="Error", description="a quarantine location cannot be made pickable")
    def patch(self, changes, path):
        """Rename a location or switch whether orders are given its stock"""
        if not (request.is_json and request.get_data(cache=True)):
            raise ValidationFailed("send the fields to change as a JSON object (Content-Type: application/json)",
                                   errors={"_body": ["a JSON object is required"]})
        locations.update_location(path, changes)
        return locations.get_location(path)


@blp.route("/stock/transfers", methods=["POST"])
@blp.arguments(TransferIn)
@blp.alt_response(201, schema=TransferOut, success=True, description="the transfer")
@blp.alt_response(409, schema="Error", description="insufficient_stock (only available units move: the message "
                  "says how many are), serial_not_in_stock (a reserved, picked or shipped unit, named with its "
                  "status), serial_elsewhere (a unit at another location, named with where it is)")
@blp.alt_response(422, schema="Error", description="unknown_location (from or to), same_location, unknown_serial, "
                  "validation_error (an unknown sku, serials missing or given for an untracked product)")
@idempotent
def post_transfer(data):
    """Move units of a product from one location to another (one movement out, one in)"""
    return locations.transfer(data["sku"], source=data["source"], destination=data["destination"],
                              quantity=data.get("quantity"), serials=data.get("serials"),
                              reference=data.get("reference")), 201


@blp.route("/orders/<int:order_id>/pick-list")
@blp.alt_response(200, schema=PickListOut, success=True, description="where the picker goes, in walk order")
@blp.alt_response(404, schema="Error", description="no such order")
def pick_list(order_id):
    """The order's pick list: one stop per location and product still reserved for it"""
    body = locations.pick_list(order_id)
    return {**body, "stops": [stop.as_dict() for stop in body["stops"]]}
