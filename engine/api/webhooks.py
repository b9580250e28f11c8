"""Signed inbound endpoints owned by plugins, and shipment labels.

The core routes the request to the named provider or carrier, which verifies
the signature on the raw body before parsing (``handle_webhook`` /
``handle_tracking``)."""

from __future__ import annotations

from flask import Response, request

from engine.api import Blueprint, public
from engine.errors import NotFound
from engine.plugins import registry
from engine.services import shipping

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1", description="Signed webhooks and labels")


@blp.route("/payments/<string(maxlength=64):provider>/webhook", methods=["POST"])
@blp.alt_response(200, schema=None, success=True, description="processed (or a replay of a processed event)")
@blp.alt_response(400, schema="Error", description="wrong signature (Stripe's convention)")
@blp.alt_response(404, schema="Error", description="no such provider, or it takes no webhooks")
@public
def payment_webhook(provider):
    """Payment provider webhook (signed)"""
    handler = getattr(registry().providers.get(provider), "handle_webhook", None)
    if handler is None:
        raise NotFound(f"no enabled payment provider {provider!r} takes webhooks")
    return handler(request)


@blp.route("/carriers/<string(maxlength=64):carrier>/tracking", methods=["POST"])
@blp.alt_response(200, schema=None, success=True, description="processed (or a replay)")
@blp.alt_response(404, schema="Error", description="no such carrier, or it takes no tracking events")
@public
def carrier_tracking(carrier):
    """Carrier tracking events (signed)"""
    handler = getattr(registry().carriers.get(carrier), "handle_tracking", None)
    if handler is None:
        raise NotFound(f"no enabled carrier {carrier!r} takes tracking events")
    return handler(request)


@blp.route("/shipments/<int:shipment_id>/label.pdf")
@blp.alt_response(200, schema=None, success=True, description="the label (application/pdf)")
@blp.alt_response(404, schema="Error", description="no such shipment or label")
def shipment_label(shipment_id):
    """The shipment's label"""
    return Response(shipping.label_pdf(shipment_id), mimetype="application/pdf")
