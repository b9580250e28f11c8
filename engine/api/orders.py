"""Orders and their transitions."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import Response, g
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from engine.api import Blueprint, idempotent
from engine.api import serialize as out
from engine.api.schemas import (
    AddressIn,
    HoldIn,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderQuery,
    PayIn,
    RateOut,
    ReasonIn,
    RefundIn,
    ScansIn,
    ShipIn,
)
from engine.db import db, transaction
from engine.errors import PaymentFailed, ProviderUnavailable
from engine.services import auth, order_list, orders, payments, placement, shipping, warehouse

blp = Blueprint("orders", __name__, url_prefix="/api/v1", description="Orders through the six stages")


def _order(order_id: int) -> dict:
    return out.order(orders.get_order(order_id, full=True))


@blp.route("/orders")
class Orders(MethodView):
    @blp.arguments(OrderQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=OrderPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List orders (filter by status, channel, flag, customer)"""
        items, next_cursor = order_list.list_orders(
            status=query.get("status"), channel=query.get("channel"), flag=query.get("flag"),
            customer=query.get("customer"), limit=query["limit"],
            cursor=int(query["cursor"]) if query.get("cursor") else None)
        return {"items": [out.order(o, detail=False) for o in items],
                "next_cursor": str(next_cursor) if next_cursor else None}

    @blp.arguments(OrderIn)
    @blp.alt_response(201, schema=OrderOut, success=True, description="the placed order")
    @blp.alt_response(200, schema=OrderOut, description="an order with this channel and external_id exists")
    @blp.alt_response(409, schema="Error", description="insufficient_stock (naming the sku), idempotency_conflict")
    def post(self, data):
        """Place an order (honours Idempotency-Key)"""
        try:
            result = _place(data)
        except IntegrityError:  # the same (channel, external_id) committed a moment ago
            db.session.rollback()
            existing = orders.find_channel_order(data.get("channel") or "api", data.get("external_id"))
            if data.get("external_id") is None or existing is None:
                raise
            return out.order(existing), 200
        if isinstance(result, Response):  # an Idempotency-Key replay
            return result
        body, status = result
        if status == 201 and (data.get("payment_method") or _wants_provider_start(body)):
            body = _start_payment(body, data.get("payment_method"))
            record_id = g.get("idempotency_record_id")
            if record_id is not None:  # later replays see the order as it stands after payment started
                with transaction():
                    auth.finish_idempotent(record_id, status, json.dumps(body))
        return body, status


@idempotent(record_last=True)
def _place(data):
    order, created = placement.place_order(data)
    return out.order(order), 201 if created else 200


def _wants_provider_start(body: dict) -> bool:
    """Providers other than manual start their payment at placement (e.g. a Stripe PaymentIntent)."""
    return body["payment_provider"] != "manual" and body["status"] == "placed" and not body["payments"]


def _start_payment(body: dict, payment_method: str | None) -> dict:
    try:
        payments.pay_order(body["id"], payment_method=payment_method)
    except (PaymentFailed, ProviderUnavailable):
        # the decline, or the provider's failure, is on the order's timeline; the order stays placed
        # and the client sees it was created (201): it can retry with POST /orders/{id}/pay
        pass
    return _order(body["id"])


@blp.route("/orders/<int:order_id>")
class OrderItem(MethodView):
    @blp.alt_response(200, schema=OrderOut, success=True, description="the order with its timeline")
    @blp.alt_response(404, schema="Error", description="no such order")
    def get(self, order_id):
        """Get an order"""
        return _order(order_id)


def _transition(name: str, doc: str, schema=None):
    """Register ``POST /orders/<id>/<name>`` answering 200 with the updated order."""

    def decorate(func):
        view = blp.alt_response(200, schema=OrderOut, success=True, description="the updated order")(func)
        view = blp.alt_response(409, schema="Error", description="illegal transition: the message names the "
                                "allowed next actions")(view)
        view = blp.alt_response(404, schema="Error", description="no such order")(view)
        if schema is not None:
            view = blp.arguments(schema)(view)
        view.__doc__ = doc
        blp.route(f"/orders/<int:order_id>/{name}", methods=["POST"], endpoint=f"order_{name}")(view)
        return func

    return decorate


@_transition("pay", "Record or start payment with the order's provider", PayIn)
def pay(data, order_id):
    payments.pay_order(order_id, amount=data.get("amount"), reference=data.get("reference"),
                       payment_method=data.get("payment_method"))
    return _order(order_id)


@_transition("pick", "Scan units into the order (serials, barcodes or skus, one per unit)", ScansIn)
def pick(data, order_id):
    warehouse.pick_order(order_id, data["scans"])
    return _order(order_id)


@_transition("pack", "Verify every picked unit again: scans must match exactly", ScansIn)
def pack(data, order_id):
    warehouse.pack_order(order_id, data["scans"])
    return _order(order_id)


@_transition("confirm", "Confirm the order (stage 3)")
def confirm(order_id):
    orders.confirm_order(order_id)
    return _order(order_id)


@_transition("ship", "Ship with a carrier and service", ShipIn)
def ship(data, order_id):
    shipping.ship_order(order_id, data["carrier"], data["service"])
    return _order(order_id)


@_transition("deliver", "Record delivery (completed at once when follow-ups are off)")
def deliver(order_id):
    orders.deliver_order(order_id, source="staff")
    return _order(order_id)


@_transition("complete", "Complete a delivered order")
def complete(order_id):
    orders.complete_order(order_id)
    return _order(order_id)


@_transition("cancel", "Cancel before shipping: releases stock, voids or refunds the payment", ReasonIn)
def cancel(data, order_id):
    orders.cancel_order(order_id, data.get("reason", ""))
    return _order(order_id)


@_transition("hold", "Put the order on hold", HoldIn)
def hold(data, order_id):
    orders.hold_order(order_id, data["reason"])
    return _order(order_id)


@_transition("release", "Release a held order back to the status it was held from")
def release(order_id):
    orders.release_order(order_id)
    return _order(order_id)


@_transition("refunds", "Refund part or all of what was paid", RefundIn)
def refund(data, order_id):
    payments.refund_order(order_id, data["amount"], data.get("reason", ""))
    return _order(order_id)


@blp.route("/orders/<int:order_id>/address", methods=["POST"])
@blp.arguments(AddressIn)
@blp.alt_response(200, schema=OrderOut, success=True, description="the order with its new shipping address")
@blp.alt_response(409, schema="Error", description="order_closed: the order has shipped or is cancelled")
@blp.alt_response(404, schema="Error", description="no such order")
def set_address(data, order_id):
    """Give the order its shipping address (before shipping): checked with the country's rules; clears
    ``review:address``; the recipient's name is kept when none is given"""
    orders.change_order_details(order_id, {"shipping_address": data}, source="staff")
    return _order(order_id)


@blp.route("/orders/<int:order_id>/rates")
@blp.alt_response(200, schema=RateOut(many=True), success=True, description="rates of every enabled carrier")
@blp.alt_response(409, schema="Error", description="address_required: the order has no deliverable address")
@blp.alt_response(404, schema="Error", description="no such order")
def rates(order_id):
    """Shipping rates for the order"""
    return [out.rate(r) for r in shipping.rates_for(order_id)]
