"""Coupons managed by API (also ``hookshop coupons``)."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from engine.api import Blueprint, idempotent
from engine.api import serialize as out
from engine.api.customer_schemas import CouponIn, CouponOut, CouponPage, CouponPatch, CouponQuery
from engine.errors import ValidationFailed
from engine.services import coupons

blp = Blueprint("coupons", __name__, url_prefix="/api/v1", description="Coupons")


@blp.route("/coupons")
class Coupons(MethodView):
    @blp.arguments(CouponQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=CouponPage, success=True, description="newest first, cursor paginated (the "
                      "COUPONS setting's coupons are not listed)")
    def get(self, query):
        """List coupons"""
        items, next_cursor = coupons.list_coupons(active=query.get("active"), limit=query["limit"],
                                                  cursor=int(query["cursor"]) if query.get("cursor") else None)
        return {"items": [out.coupon(c) for c in items], "next_cursor": str(next_cursor) if next_cursor else None}

    @blp.arguments(CouponIn)
    @blp.alt_response(201, schema=CouponOut, success=True, description="the coupon")
    @blp.alt_response(409, schema="Error", description="duplicate_coupon (the code exists, in any letter case)")
    @idempotent
    def post(self, data):
        """Create a coupon: percentage, fixed_amount or free_shipping; dates; limits in total and per customer"""
        return out.coupon(coupons.create_coupon(data)), 201


@blp.route("/coupons/<string(maxlength=64):code>")
class CouponItem(MethodView):
    @blp.alt_response(200, schema=CouponOut, success=True, description="the coupon with its uses")
    @blp.alt_response(404, schema="Error", description="no such coupon")
    def get(self, code):
        """A coupon (the code in any letter case)"""
        return out.coupon(coupons.get_coupon(code))

    @blp.arguments(CouponPatch)
    @blp.alt_response(200, schema=CouponOut, success=True, description="the changed coupon")
    @blp.alt_response(404, schema="Error", description="no such coupon")
    @blp.alt_response(409, schema="Error", description="usage_limit_below_uses")
    def patch(self, changes, code):
        """Change or disable (active: false) a coupon"""
        if not (request.is_json and request.get_data(cache=True)):
            raise ValidationFailed("send the fields to change as a JSON object (Content-Type: application/json)",
                                   errors={"_body": ["a JSON object is required"]})
        return out.coupon(coupons.update_coupon(code, changes))
