"""REST: sales channels (``/api/v1/channels``), the signed inbound order webhook, sales by channel,
and the schemas of outbound webhook subscriptions with their delivery log (``/api/v1/webhooks``: its routes
are in webhooks_api.py, on this blueprint)."""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask import request
from flask.views import MethodView
from marshmallow import fields, validate

from engine.plugin_api import (
    Blueprint,
    boolean,
    idempotent,
    mapping,
    public,
    query_integer,
    requires_scope,
    utcnow,
)
from plugins.channel_webhook import channels, inbound

blp = Blueprint("channel_webhook", __name__, url_prefix="/api/v1",
                description="Sales channels (signed inbound orders) and outbound webhooks")

Int = fields.Integer


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def _limit():
    return query_integer(1, 500, load_default=50)


def _sku_map():
    return mapping(fields.String(validate=validate.Length(min=1, max=128)),
                   fields.String(validate=validate.Length(min=1, max=64)), 10000,
                   metadata={"description": "the channel's sku, variant id or product id -> our sku"})


# --------------------------------------------------------------------------- schemas: channels


class ChannelIn(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=48),
                         metadata={"description": "lower-case letters, digits, - and _; the orders' channel"})
    format = fields.String(required=True, validate=validate.Length(min=1, max=64),
                           metadata={"description": "generic, shopify or woocommerce"})
    secret = fields.String(validate=validate.Length(min=8, max=255), metadata={
        "description": "the signing secret (required for shopify and woocommerce; generic: a whsec_ secret, "
                       "generated and shown once when left out)"})
    sku_map = _sku_map()
    payment_provider = fields.String(validate=validate.Length(min=1, max=64), metadata={
        "description": "the provider of its orders (default manual)"})
    payment_status = fields.String(validate=validate.OneOf(channels.PAYMENT_STATUSES), metadata={
        "description": "auto (from the payload: Shopify paid, WooCommerce processing/completed), paid or unpaid"})


class ChannelPatch(Strict):
    sku_map = _sku_map()
    payment_provider = fields.String(validate=validate.Length(min=1, max=64))
    payment_status = fields.String(validate=validate.OneOf(channels.PAYMENT_STATUSES))


class SecretRotationIn(Strict):
    secret = fields.String(validate=validate.Length(min=8, max=255), metadata={
        "description": "the new secret (generic: generated when left out)"})
    keep_previous_hours = Int(strict=True, validate=validate.Range(min=0, max=720), load_default=24, metadata={
        "description": "how long the old secret is still accepted (0: at once refused)"})


class ChannelOut(Strict):
    name = fields.String()
    format = fields.String()
    webhook_path = fields.String()
    sku_map = fields.Dict(keys=fields.String(), values=fields.String())
    payment_provider = fields.String()
    payment_status = fields.String()
    previous_secret_expires_at = fields.String(allow_none=True)
    rejected_deliveries = Int()
    created_at = fields.String()
    secret = fields.String(metadata={"description": "only in the answer that generated it"})


class InboundQuery(Strict):
    outcome = fields.String(validate=validate.OneOf(("created", "existing", "ignored", "rejected")))
    limit = _limit()
    cursor = query_integer()


class InboundOut(Strict):
    id = Int()
    channel = fields.String()
    delivery_id = fields.String()
    topic = fields.String(allow_none=True)
    external_id = fields.String(allow_none=True)
    order_id = Int(allow_none=True)
    outcome = fields.String()
    status_code = Int()
    reason = fields.String(allow_none=True)
    errors = fields.Dict()
    extra = fields.Dict()
    payload = fields.Raw(allow_none=True, metadata={"description": "what was sent, minus secrets and card data"})
    attempts = Int()
    first_seen_at = fields.String()
    last_seen_at = fields.String()


class InboundPage(Strict):
    items = fields.List(fields.Nested(InboundOut))
    next_cursor = fields.String(allow_none=True)


class SalesQuery(Strict):
    since = fields.Date(metadata={"description": "first day (UTC), default 30 days ago"})
    until = fields.Date(metadata={"description": "last day (UTC), default today"})
    channel = fields.String(validate=validate.Length(min=1, max=64))


class SalesRow(Strict):
    date = fields.String()
    channel = fields.String()
    currency = fields.String()
    orders = Int()
    revenue = Int()
    refunded = Int()
    net_revenue = Int()
    cancelled = Int()


class SalesOut(Strict):
    since = fields.String()
    until = fields.String()
    items = fields.List(fields.Nested(SalesRow))


class ChannelOrderOut(Strict):
    id = Int()
    number = fields.String()
    status = fields.String()
    payment_status = fields.String()
    channel = fields.String()
    external_id = fields.String(allow_none=True)
    currency = fields.String()
    total = Int()
    lines = fields.List(fields.Dict())


# --------------------------------------------------------------------------- schemas: webhooks


class SubscriptionIn(Strict):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                         validate=validate.Length(min=1, max=50),
                         metadata={"description": "stage hook names (order_placed, stock_low, refund_issued, ...) "
                                                  "or * for every event"})
    description = fields.String(validate=validate.Length(max=200))


class SubscriptionPatch(Strict):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(min=1, max=50))
    description = fields.String(validate=validate.Length(max=200), allow_none=True)
    active = boolean(metadata={
        "description": "false disables, true enables again (and forgets the run of failures)"})


class SubscriptionRotationIn(Strict):
    keep_previous_hours = Int(strict=True, validate=validate.Range(min=0, max=720), load_default=24, metadata={
        "description": "how long deliveries carry a second signature with the old secret"})


class SubscriptionQuery(Strict):
    status = fields.String(validate=validate.OneOf(("active", "disabled")))


class SubscriptionOut(Strict):
    id = Int()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String(allow_none=True)
    status = fields.String()
    disabled_reason = fields.String(allow_none=True)
    disabled_at = fields.String(allow_none=True)
    consecutive_failures = Int()
    failing_since = fields.String(allow_none=True)
    last_success_at = fields.String(allow_none=True)
    created_at = fields.String()
    previous_secret_expires_at = fields.String(allow_none=True)
    secret = fields.String(metadata={"description": "whsec_ secret: only in the answer to creation or rotation"})


class DeliveryQuery(Strict):
    subscription = query_integer()
    status = fields.String(validate=validate.OneOf(("pending", "sending", "delivered", "failed", "cancelled")))
    event_type = fields.String(validate=validate.Length(min=1, max=64))
    limit = _limit()
    cursor = query_integer()


class AttemptOut(Strict):
    number = Int()
    manual = fields.Boolean()
    at = fields.String()
    status_code = Int(allow_none=True)
    duration_ms = Int()
    error = fields.String(allow_none=True)
    response = fields.String(allow_none=True)


class DeliveryOut(Strict):
    id = Int()
    subscription_id = Int()
    event_id = Int()
    event_type = fields.String()
    webhook_id = fields.String()
    status = fields.String()
    attempts = Int()
    next_attempt_at = fields.String(allow_none=True)
    last_status_code = Int(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_duration_ms = Int(allow_none=True)
    created_at = fields.String()
    delivered_at = fields.String(allow_none=True)


class DeliveryDetail(DeliveryOut):
    body = fields.Dict()
    attempt_log = fields.List(fields.Nested(AttemptOut))


class DeliveryPage(Strict):
    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)


# --------------------------------------------------------------------------- channels


@blp.route("/channels")
class Channels(MethodView):
    @blp.alt_response(200, schema=ChannelOut(many=True), success=True, description="every channel (no secrets)")
    def get(self):
        """List sales channels"""
        return [channels.channel_out(c) for c in channels.list_channels()]

    @blp.arguments(ChannelIn)
    @blp.alt_response(201, schema=ChannelOut, success=True, description="the channel (a generated secret, once)")
    @blp.alt_response(409, schema="Error", description="a channel with this name exists")
    @requires_scope("admin", "a channel is configured with its signing secret (or answers a generated one)")
    @idempotent
    def post(self, data):
        """Configure a sales channel (admin scope: it sets the signing secret)"""
        channel, generated = channels.create_channel(data)
        return channels.channel_out(channel, generated), 201


@blp.route("/channels/sales", methods=["GET"])
@blp.arguments(SalesQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=SalesOut, success=True, description="orders and revenue per day, channel, currency")
def sales(query):
    """Sales by channel, per day"""
    until = query.get("until") or utcnow().date()
    since = query.get("since") or until - timedelta(days=29)
    return {"since": since.isoformat(), "until": until.isoformat(),
            "items": channels.sales_by_channel(since, until, query.get("channel"))}


@blp.route("/channels/<segment(maxlength=64, exclude='sales'):name>")
class ChannelItem(MethodView):
    @blp.alt_response(200, schema=ChannelOut, success=True, description="the channel")
    @blp.alt_response(404, schema="Error", description="no such channel")
    def get(self, name):
        """Get a sales channel"""
        return channels.channel_out(channels.get_channel(name))

    @blp.arguments(ChannelPatch)
    @blp.alt_response(200, schema=ChannelOut, success=True, description="the changed channel")
    @blp.alt_response(404, schema="Error", description="no such channel")
    def patch(self, data, name):
        """Change a channel's sku map or payment settings"""
        return channels.channel_out(channels.update_channel(name, data))


@blp.route("/channels/<string(maxlength=64):name>/secret", methods=["POST"])
@blp.arguments(SecretRotationIn)
@blp.alt_response(200, schema=ChannelOut, success=True, description="the channel (a generated secret, once)")
@blp.alt_response(404, schema="Error", description="no such channel")
@requires_scope("admin", "rotating sets a new signing secret (or answers a generated one)")
def rotate_channel_secret(data, name):
    """Rotate a channel's signing secret (the old one stays valid for a while; admin scope)"""
    channel, generated = channels.rotate_secret(name, data.get("secret"), data["keep_previous_hours"])
    return channels.channel_out(channel, generated)


@blp.route("/channels/<string(maxlength=64):name>/deliveries", methods=["GET"])
@blp.arguments(InboundQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=InboundPage, success=True, description="newest first; rejected ones are for staff")
@blp.alt_response(404, schema="Error", description="no such channel")
def channel_deliveries(query, name):
    """The channel's inbound deliveries: what each created, or why it was refused"""
    rows, next_cursor = channels.list_inbound(name, query.get("outcome"), query["limit"], query.get("cursor"))
    return {"items": [channels.inbound_out(r) for r in rows], "next_cursor": str(next_cursor) if next_cursor else None}


@blp.route("/channels/<string(maxlength=64):name>/orders", methods=["POST"])
@blp.alt_response(201, schema=ChannelOrderOut, success=True, description="the order was placed")
@blp.alt_response(200, schema=ChannelOrderOut, description="the order exists (a redelivery), a replayed delivery "
                  "(its first answer), a WooCommerce ping, or a platform order that creates nothing")
@blp.alt_response(400, schema="Error", description="the body is not JSON")
@blp.alt_response(404, schema="Error", description="no such channel")
@blp.alt_response(409, schema="Error", description="insufficient_stock (recorded for staff)")
@blp.alt_response(422, schema="Error", description="the payload is malformed: errors name its fields")
@public
def channel_order(name):
    """A sales channel's order webhook (signed: see the channel's format)"""
    return inbound.receive(name, request)
