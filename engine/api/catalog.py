"""Products and stock."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from engine.api import Blueprint, idempotent
from engine.api import serialize as out
from engine.api.schemas import (
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductQuery,
    StockOut,
    StockReceiptIn,
)
from engine.errors import ValidationFailed
from engine.services import catalog, stock

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Products and stock")


@blp.route("/products")
class Products(MethodView):
    @blp.arguments(ProductQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=ProductPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List and search products (live ones by default; archived=true for the archived)"""
        items, next_cursor = catalog.list_products(
            q=query.get("q"), archived=query["archived"], limit=query["limit"],
            cursor=int(query["cursor"]) if query.get("cursor") else None)
        return {"items": [out.product(p) for p in items], "next_cursor": str(next_cursor) if next_cursor else None}

    @blp.arguments(ProductIn)
    @blp.alt_response(201, schema=ProductOut, success=True, description="the product")
    @blp.alt_response(409, schema="Error", description="duplicate sku or barcode")
    @idempotent
    def post(self, data):
        """Create a product"""
        return out.product(catalog.create_product(data)), 201


@blp.route("/products/<string(maxlength=64):sku>")
class ProductItem(MethodView):
    @blp.alt_response(200, schema=ProductOut, success=True, description="the product")
    @blp.alt_response(404, schema="Error", description="no such product")
    def get(self, sku):
        """Get a product (archived ones too)"""
        return out.product(catalog.get_product(sku))

    @blp.arguments(ProductPatch)
    @blp.alt_response(200, schema=ProductOut, success=True, description="the changed product")
    @blp.alt_response(404, schema="Error", description="no such product")
    @blp.alt_response(409, schema="Error", description="duplicate_barcode; product_has_stock (track_serials cannot "
                      "be switched while the product has stock or serials); product_backordered (cannot archive "
                      "while open orders wait for it)")
    @blp.alt_response(422, schema="Error", description="validation_error (an unknown field, a wrong type, out of "
                      "bounds), invalid_barcode (a GTIN's check digit is wrong)")
    def patch(self, changes, sku):
        """Change a product, or archive it (archived: true) or bring it back (archived: false)"""
        if not (request.is_json and request.get_data(cache=True)):  # webargs would read no body as {}
            raise ValidationFailed("send the fields to change as a JSON object (Content-Type: application/json)",
                                   errors={"_body": ["a JSON object is required"]})
        return out.product(catalog.update_product(sku, changes))


@blp.route("/stock/receipts")
class StockReceipts(MethodView):
    @blp.arguments(StockReceiptIn)
    @blp.alt_response(201, schema=StockOut, success=True, description="the product's stock after the receipt")
    @blp.alt_response(409, schema="Error", description="a serial is already known")
    @idempotent
    def post(self, data):
        """Receive stock (serial-tracked products: exactly one serial per unit)"""
        return stock.receive_stock(data["sku"], data["quantity"], data.get("location"), data.get("serials"),
                                   data.get("reference"), data.get("unit_cost")), 201


@blp.route("/stock/<segment(maxlength=64, exclude='receipts,alerts'):sku>")
class StockItem(MethodView):
    @blp.alt_response(200, schema=StockOut, success=True, description="on_hand, reserved, available and locations")
    @blp.alt_response(404, schema="Error", description="no such product")
    def get(self, sku):
        """Stock of a product"""
        return stock.get_stock(sku)
