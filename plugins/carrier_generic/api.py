"""The plugin's routes: the packing slip, a shipment's tracking events, and the public tracking page."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, render_template_string
from marshmallow import Schema, fields
from sqlalchemy import select

from engine.plugin_api import Blueprint, NotFound, Order, Shipment, as_utc, db
from plugins.carrier_generic.models import TrackingEvent

blp = Blueprint("carrier_generic", __name__, url_prefix="/api/v1",
                description="carrier_generic: packing slips and tracking events")
public_pages = FlaskBlueprint("carrier_generic_pages", __name__)


class TrackingEventOut(Schema):
    status = fields.String()
    occurred_at = fields.String()
    location = fields.String(allow_none=True)
    late = fields.Boolean(metadata={"description": "older than an event received before it"})
    received_at = fields.String()


class TrackingOut(Schema):
    shipment_id = fields.Integer()
    order_id = fields.Integer()
    carrier = fields.String()
    service = fields.String()
    tracking_number = fields.String(allow_none=True)
    tracking_url = fields.String(allow_none=True)
    estimated_delivery = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "the latest tracking status (by occurred_at), or the "
                                                    "shipment's status before any event"})
    events = fields.List(fields.Nested(TrackingEventOut), metadata={"description": "oldest first"})


def _iso(value):
    return as_utc(value).isoformat() if value is not None else None


def _carriers() -> dict:
    from engine.plugin_api import registry

    settings = current_app.extensions.get("carrier_generic")
    names = {c.name for c in settings.carriers} if settings else {"generic"}
    return {name: carrier for name, carrier in registry().carriers.items() if name in names}


def sender_for(order) -> dict | None:
    carriers = _carriers()
    for shipment in order.shipments:
        if shipment.carrier in carriers:
            return carriers[shipment.carrier].sender()
    first = next(iter(carriers.values()), None)
    return first.sender() if first else None


def tracking_of(shipment: Shipment) -> dict:
    events = db.session.execute(select(TrackingEvent).where(TrackingEvent.shipment_id == shipment.id)
                                .order_by(TrackingEvent.occurred_at, TrackingEvent.id)).scalars().all()
    return {"shipment_id": shipment.id, "order_id": shipment.order_id, "carrier": shipment.carrier,
            "service": shipment.service, "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
            "estimated_delivery": shipment.estimated_delivery.isoformat() if shipment.estimated_delivery else None,
            "status": events[-1].status if events else shipment.status,
            "events": [{"status": e.status, "occurred_at": _iso(e.occurred_at), "location": e.location,
                        "late": e.late, "received_at": _iso(e.received_at)} for e in events]}


@blp.route("/orders/<int:order_id>/packing-slip.pdf")
@blp.alt_response(200, schema=None, success=True, description="the packing slip (application/pdf); a gift "
                  "order's slip shows no prices")
@blp.alt_response(404, schema="Error", description="no such order")
def packing_slip(order_id):
    """The order's packing slip"""
    from plugins.carrier_generic import labels

    order = db.session.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order with id {order_id}")
    pdf = labels.packing_slip(order, sender=sender_for(order), shipments=list(order.shipments))
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="packing-slip-{order.number}.pdf"'})


@blp.route("/shipments/<int:shipment_id>/tracking")
@blp.response(200, TrackingOut)
@blp.alt_response(404, schema="Error", description="no such shipment")
def shipment_tracking(shipment_id):
    """A shipment's tracking events"""
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment with id {shipment_id}")
    return tracking_of(shipment)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Tracking {{ t.tracking_number }}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #ddd}
.status{font-size:1.4em;font-weight:600}</style></head><body>
<h1>Parcel {{ t.tracking_number }}</h1>
<p>{{ label }} &middot; {{ t.service }}</p>
<p class="status">{{ t.status | replace("_", " ") }}</p>
{% if t.estimated_delivery and t.status != "delivered" %}<p>Expected on {{ t.estimated_delivery }}.</p>{% endif %}
{% if t.events %}<table><tr><th>When (UTC)</th><th>What</th><th>Where</th></tr>
{% for e in t.events | reverse %}<tr><td>{{ e.occurred_at[:16] | replace("T", " ") }}</td>
<td>{{ e.status | replace("_", " ") }}</td><td>{{ e.location or "" }}</td></tr>{% endfor %}</table>
{% else %}<p>The carrier has not reported any event yet.</p>{% endif %}
</body></html>"""


@public_pages.get("/tracking/<string(maxlength=64):carrier>/<string(maxlength=128):tracking_number>")
def tracking_page(carrier, tracking_number):
    """The public tracking page (the shipment's tracking link): status and events, no personal data."""
    carriers = _carriers()
    shipment = None
    if carrier in carriers:
        shipment = db.session.execute(select(Shipment).where(Shipment.carrier == carrier,
                                                             Shipment.tracking_number == tracking_number)
                                      .order_by(Shipment.id.desc()).limit(1)).scalar_one_or_none()
    if shipment is None:
        return Response("No parcel with this tracking number.\n", status=404, mimetype="text/plain")
    return render_template_string(PAGE, t=tracking_of(shipment), label=carriers[carrier].config.label)
