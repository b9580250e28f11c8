"""The tracking webhook: Standard Webhooks signatures, the event body, its effect on the order.

``POST /api/v1/carriers/<name>/tracking`` with ``{tracking_number, status, occurred_at, location?}``
and the headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, the key being the base64 part of the
``whsec_`` secret). The signature is checked on the raw body before it is parsed, by the core's
Standard Webhooks verification (``engine.outbound``, on the ``standardwebhooks`` package).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import marshmallow as ma
from marshmallow import fields, validate
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    TIMELINE_TRACKING_PREFIX,
    Order,
    Shipment,
    SignatureRefused,
    as_utc,
    db,
    deliver_order,
    inbox_seen,
    note_order,
    record_once,
    reset_session,
    sign_headers,
    transaction,
)
from engine.plugin_api import (
    verify_webhook as verify_standard,
)
from engine.plugin_api import (
    webhook_secret_key as standard_key,
)
from engine.plugin_api import (
    webhook_signature as signature,
)
from plugins.carrier_generic.config import STATUSES
from plugins.carrier_generic.models import TrackingEvent

TOLERANCE_SECONDS = 5 * 60
STATUS_TEXT = {"in_transit": "in transit", "out_for_delivery": "out for delivery", "delivered": "delivered",
               "exception": "delivery exception", "returned_to_sender": "returned to sender"}


@dataclass(frozen=True)
class Event:
    webhook_id: str
    tracking_number: str
    status: str
    occurred_at: datetime  # aware, UTC
    location: str | None = None


class Rejected(Exception):
    """A tracking delivery that is refused: ``status`` and the error body."""

    def __init__(self, status: int, code: str, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or {}

    @property
    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": self.errors}


class EventSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    tracking_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    occurred_at = fields.DateTime(required=True)
    location = fields.String(allow_none=True, validate=validate.Length(max=200))


# ----------------------------------------------------------------------------- signatures


def secret_key(secret: str | None) -> bytes | None:
    """The HMAC key of a ``whsec_<base64>`` secret, or None when it is missing or malformed."""
    if not secret or not secret.startswith("whsec_"):
        return None
    try:
        return standard_key(secret, min_bytes=1)
    except ValueError:
        return None


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` header value of a delivery (what the carrier sends)."""
    if secret_key(secret) is None:
        raise ValueError("the secret must be whsec_ followed by base64")
    return signature(secret, webhook_id, int(timestamp), body)


def signed_headers(secret: str, body: bytes, webhook_id: str, timestamp: int | None = None) -> dict:
    """The three Standard Webhooks headers for ``body`` (a carrier's side; tests use it)."""
    sign(secret, webhook_id, 0, b"")  # the same refusal of a malformed secret
    return sign_headers([secret], body, msg_id=webhook_id, timestamp=timestamp)


def verify(secret: str | None, headers, body: bytes, now: float | None = None) -> str:
    """Check a delivery's signature and timestamp (the core's Standard Webhooks verification, ±5
    minutes); its ``webhook-id``, or ``Rejected`` (401)."""
    if secret is None or secret_key(secret) is None:
        raise Rejected(401, "unauthorized", "tracking events are refused: HOOKSHOP_CARRIER_GENERIC_TRACKING_SECRET "
                       "is not set (or is not whsec_<base64>)")
    try:
        webhook_id = verify_standard([secret], headers, body, now=now, tolerance=TOLERANCE_SECONDS)
    except SignatureRefused as exc:
        raise Rejected(401, "unauthorized", str(exc)) from None
    if len(webhook_id) > 200:
        raise Rejected(400, "bad_request", "webhook-id is longer than 200 characters")
    return webhook_id


def parse(raw: bytes, webhook_id: str) -> Event:
    """The event of a verified body, or ``Rejected`` (400 broken JSON, 422 invalid)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise Rejected(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(422, "validation_error", "the body must be a JSON object", {"_body": ["not an object"]})
    try:
        loaded = EventSchema().load(data)
    except ma.ValidationError as exc:
        raise Rejected(422, "validation_error", "the tracking event is not valid: see errors, field by field",
                       exc.normalized_messages()) from None
    occurred = loaded["occurred_at"]
    occurred = occurred.replace(tzinfo=UTC) if occurred.tzinfo is None else occurred.astimezone(UTC)
    if occurred > datetime.now(UTC) + timedelta(hours=1):
        raise Rejected(422, "validation_error", "occurred_at is in the future",
                       {"occurred_at": ["more than an hour in the future"]})
    return Event(webhook_id=webhook_id, tracking_number=loaded["tracking_number"], status=loaded["status"],
                 occurred_at=occurred, location=(loaded.get("location") or "").strip() or None)


# ----------------------------------------------------------------------------- the effect


def _naive_utc(moment: datetime) -> datetime:
    """Stored without a zone (SQLite keeps none): UTC wall time, the same on both databases."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def apply(carrier_name: str, event: Event) -> tuple[dict, int]:
    """Record the event once and put it on the order's timeline; ``delivered`` delivers a shipped order."""
    source = f"carrier_generic:{carrier_name}"
    try:
        with transaction():
            if inbox_seen(source, event.webhook_id):
                return {"received": True, "duplicate": True}, 200
            shipment = db.session.execute(
                select(Shipment).where(Shipment.carrier == carrier_name,
                                       Shipment.tracking_number == event.tracking_number)
                .order_by(Shipment.id.desc()).limit(1)).scalar_one_or_none()
            if shipment is None:
                return {"code": "not_found", "message": f"no {carrier_name} shipment with tracking number "
                        f"{event.tracking_number}", "errors": {"tracking_number": ["unknown"]}}, 404
            # the order row locked: one event of an order at a time
            order = db.session.get_one(Order, shipment.order_id, with_for_update=True, populate_existing=True)
            record_once(source, event.webhook_id, {"tracking_number": event.tracking_number})
            occurred = _naive_utc(event.occurred_at)
            same = db.session.execute(select(TrackingEvent.id).where(
                TrackingEvent.shipment_id == shipment.id, TrackingEvent.status == event.status,
                TrackingEvent.occurred_at == occurred)).first()
            if same is not None:  # the same event again under another delivery id
                return {"received": True, "duplicate": True}, 200
            last = db.session.execute(select(func.max(TrackingEvent.occurred_at))
                                      .where(TrackingEvent.shipment_id == shipment.id)).scalar()
            late = last is not None and as_utc(last) > event.occurred_at
            record = TrackingEvent(shipment_id=shipment.id, order_id=order.id, carrier=carrier_name,
                                   tracking_number=event.tracking_number, status=event.status,
                                   occurred_at=occurred, location=event.location, webhook_id=event.webhook_id,
                                   late=late, moved_order=False)
            db.session.add(record)
            db.session.flush()
            when = event.occurred_at.strftime("%Y-%m-%d %H:%M UTC")
            if event.status == "delivered" and order.status == "shipped":
                record.moved_order = True
                deliver_order(order.id, source=carrier_name, occurred_at=event.occurred_at.isoformat())
            else:
                text = STATUS_TEXT[event.status]
                message = (f"{carrier_name}: {text}{' at ' + event.location if event.location else ''}, "
                           f"{when} (tracking {event.tracking_number})")
                if late:
                    message += "; reported after a later event, so it changes nothing"
                elif event.status == "delivered":
                    message += f"; the order is already {order.status}"
                note_order(order, TIMELINE_TRACKING_PREFIX + event.status, message, carrier=carrier_name,
                            shipment_id=shipment.id, tracking_number=event.tracking_number, status=event.status,
                            occurred_at=event.occurred_at.isoformat(), location=event.location, late=late)
            return {"received": True, "duplicate": False, "tracking_number": event.tracking_number,
                    "status": event.status, "late": late, "order_status": order.status}, 200
    except IntegrityError:  # the same delivery (or event), committed a moment ago by another request
        reset_session()
        return {"received": True, "duplicate": True}, 200
