"""REST: outbound webhook subscriptions and their delivery log (``/api/v1/webhooks``), on the plugin's
blueprint (``api.blp``; its schemas are in api.py)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from engine.plugin_api import idempotent, require_scope, requires_scope
from plugins.channel_webhook import outbound
from plugins.channel_webhook.api import (
    DeliveryDetail,
    DeliveryPage,
    DeliveryQuery,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionQuery,
    SubscriptionRotationIn,
    blp,
)


@blp.route("/webhooks/subscriptions")
class Subscriptions(MethodView):
    @blp.arguments(SubscriptionQuery, location="query", unknown=ma.RAISE)
    @blp.alt_response(200, schema=SubscriptionOut(many=True), success=True, description="every subscription")
    def get(self, query):
        """List webhook subscriptions (disabled ones say why)"""
        return [outbound.subscription_out(s) for s in outbound.list_subscriptions(query.get("status"))]

    @blp.arguments(SubscriptionIn)
    @blp.alt_response(201, schema=SubscriptionOut, success=True, description="the subscription and its secret, once")
    @requires_scope("admin", "the answer holds the subscription's signing secret")
    @idempotent
    def post(self, data):
        """Subscribe a URL to events (deliveries signed with Standard Webhooks; admin scope)"""
        sub, secret = outbound.create_subscription(data["url"], data["events"], data.get("description"))
        return outbound.subscription_out(sub, secret), 201


@blp.route("/webhooks/subscriptions/<int:subscription_id>")
class SubscriptionItem(MethodView):
    @blp.alt_response(200, schema=SubscriptionOut, success=True, description="the subscription")
    @blp.alt_response(404, schema="Error", description="no such subscription")
    def get(self, subscription_id):
        """Get a webhook subscription"""
        return outbound.subscription_out(outbound.get_subscription(subscription_id))

    @blp.arguments(SubscriptionPatch)
    @blp.alt_response(200, schema=SubscriptionOut, success=True, description="the changed subscription")
    @blp.alt_response(403, schema="Error", description="the API key lacks the write scope, or changes `url` "
                      "without the admin scope (the signed deliveries would go elsewhere)")
    @blp.alt_response(404, schema="Error", description="no such subscription")
    def patch(self, data, subscription_id):
        """Change, disable or enable again a webhook subscription (a new `url` needs the admin scope)"""
        if "url" in data:
            require_scope("admin", "a new url sends the subscription's signed deliveries elsewhere")
        return outbound.subscription_out(outbound.update_subscription(subscription_id, data))

    @blp.alt_response(204, schema=None, success=True, description="deleted, with its delivery log")
    @blp.alt_response(404, schema="Error", description="no such subscription")
    def delete(self, subscription_id):
        """Delete a webhook subscription"""
        outbound.delete_subscription(subscription_id)
        return "", 204


@blp.route("/webhooks/subscriptions/<int:subscription_id>/secret", methods=["POST"])
@blp.arguments(SubscriptionRotationIn)
@blp.alt_response(200, schema=SubscriptionOut, success=True, description="the subscription and its new secret, once")
@blp.alt_response(404, schema="Error", description="no such subscription")
@requires_scope("admin", "the answer holds the subscription's new signing secret")
def rotate_subscription_secret(data, subscription_id):
    """Rotate a subscription's secret (both sign for a while; admin scope)"""
    sub, secret = outbound.rotate_secret(subscription_id, data["keep_previous_hours"])
    return outbound.subscription_out(sub, secret)


@blp.route("/webhooks/deliveries", methods=["GET"])
@blp.arguments(DeliveryQuery, location="query", unknown=ma.RAISE)
@blp.alt_response(200, schema=DeliveryPage, success=True, description="the delivery log, newest first")
def deliveries(query):
    """The outbound delivery log"""
    rows, next_cursor = outbound.list_deliveries(subscription=query.get("subscription"), status=query.get("status"),
                                                 event_type=query.get("event_type"), limit=query["limit"],
                                                 cursor=query.get("cursor"))
    return {"items": [outbound.delivery_out(d) for d in rows], "next_cursor": str(next_cursor) if next_cursor else None}


@blp.route("/webhooks/deliveries/<int:delivery_id>", methods=["GET"])
@blp.alt_response(200, schema=DeliveryDetail, success=True, description="the delivery, its body and every attempt")
@blp.alt_response(404, schema="Error", description="no such delivery")
def delivery(delivery_id):
    """A delivery with its attempts"""
    return outbound.delivery_out(outbound.get_delivery(delivery_id), attempts=True)


@blp.route("/webhooks/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@blp.alt_response(200, schema=DeliveryDetail, success=True, description="the delivery after one more attempt")
@blp.alt_response(404, schema="Error", description="no such delivery")
@blp.alt_response(409, schema="Error", description="the subscription is disabled, or the delivery is being sent")
def redeliver(delivery_id):
    """Send a delivery again now (same webhook-id)"""
    return outbound.delivery_out(outbound.redeliver(delivery_id), attempts=True)
