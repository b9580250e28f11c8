"""Customer profiles: read, search, staff edits, merge of duplicates."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine.api import Blueprint, idempotent
from engine.api import serialize as out
from engine.api.customer_schemas import CustomerPage, CustomerPatch, CustomerQuery, MergeIn, MergeOut
from engine.api.schemas import CustomerOut
from engine.db import db
from engine.errors import ValidationFailed
from engine.models import Order
from engine.services import customers

blp = Blueprint("customers", __name__, url_prefix="/api/v1", description="Customer profiles")


def _profile(customer) -> dict:
    history = db.session.execute(select(Order).where(Order.customer_id == customer.id)
                                 .order_by(Order.id.desc()).limit(50)
                                 .options(selectinload(Order.flag_rows))).scalars().all()
    return out.customer(customer, history, customers.preferences_of(customer.id))


@blp.route("/customers")
class Customers(MethodView):
    @blp.arguments(CustomerQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=CustomerPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List and search customer profiles (q: name, e-mail, company or phone)"""
        items, next_cursor = customers.list_customers(
            q=query.get("q"), vip=query.get("vip"), merged=query["merged"], limit=query["limit"],
            cursor=int(query["cursor"]) if query.get("cursor") else None)
        return {"items": [out.customer_summary(c) for c in items],
                "next_cursor": str(next_cursor) if next_cursor else None}


@blp.route("/customers/<int:customer_id>")
class CustomerItem(MethodView):
    @blp.alt_response(200, schema=CustomerOut, success=True, description="profile with the last 50 orders")
    @blp.alt_response(404, schema="Error", description="no such customer")
    def get(self, customer_id):
        """A customer's profile: history, order_count, total_spent, preferences, vip"""
        return _profile(customers.get_customer(customer_id))

    @blp.arguments(CustomerPatch)
    @blp.alt_response(200, schema=CustomerOut, success=True, description="the changed profile")
    @blp.alt_response(404, schema="Error", description="no such customer")
    @blp.alt_response(409, schema="Error", description="customer_merged (edit the survivor)")
    @blp.alt_response(422, schema="Error", description="validation_error (an unknown field, a language Babel does "
                      "not know), invalid_tax_id (the country's VAT format is known and the number fails it)")
    def patch(self, changes, customer_id):
        """Staff edits: company, tax id, billing address, notes, language, vip (null: back to the rule)"""
        if not (request.is_json and request.get_data(cache=True)):
            raise ValidationFailed("send the fields to change as a JSON object (Content-Type: application/json)",
                                   errors={"_body": ["a JSON object is required"]})
        return _profile(customers.update_customer(customer_id, changes))


@blp.route("/customers/<int:customer_id>/merge")
class CustomerMerge(MethodView):
    @blp.arguments(MergeIn)
    @blp.alt_response(200, schema=MergeOut, success=True, description="the survivor, with what was merged now")
    @blp.alt_response(404, schema="Error", description="no such customer (the survivor or one to merge)")
    @blp.alt_response(409, schema="Error", description="customer_merged (the survivor, or one to merge, was merged "
                      "into another profile)")
    @blp.alt_response(422, schema="Error", description="merge_into_itself, validation_error")
    @idempotent
    def post(self, data, customer_id):
        """Merge duplicates into this customer: orders, returns, spending, flags and notes move; the duplicates
        stay as tombstones pointing here (a replay merges nothing more)"""
        survivor, merged = customers.merge_customers(customer_id, data["from_"])
        return {**_profile(survivor), "merged": merged}
