"""``POST /api/v1/payments/stripe/webhook``: Stripe's signed events.

1. The ``Stripe-Signature`` is verified on the raw body with the SDK's verifier
   (``stripe.WebhookSignature.verify_header``: HMAC-SHA256, timestamps older than
   5 minutes refused); timestamps more than 5 minutes in the future are refused
   too. A failure answers 400 (Stripe's convention) and changes nothing.
2. Event types hookshop does not use answer 200 and are ignored.
3. An event id already processed answers 200 at once (the inbox).
4. The PaymentIntent's *current* state is read from Stripe: events arrive late,
   twice or out of order, and the state at Stripe is the truth, so any order of
   deliveries ends in the same state.
5. The inbox record and the effect (``apply_payment``, ``apply_refund``) are
   written in one transaction.
"""

from __future__ import annotations

import json
import time

import stripe
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    Order,
    Payment,
    Refund,
    RefundOutcome,
    apply_payment,
    apply_refund,
    db,
    end_read,
    inbox_seen,
    record_once,
    reset_session,
    transaction,
)

from .models import StripeOperation
from .provider import NAME, TERMINAL, outcome_for, refund_status
from .settings import SETTINGS
from .stripe_api import (
    StripeRefused,
    StripeUnavailable,
    from_stripe,
    list_refunds,
    read,
    retrieve_intent,
    stripe_client,
)

SOURCE = "stripe"
TOLERANCE = 300  # seconds, both ways
PAYMENT_EVENTS = {
    "payment_intent.succeeded", "payment_intent.amount_capturable_updated", "payment_intent.payment_failed",
    "payment_intent.canceled", "payment_intent.processing", "payment_intent.requires_action",
}
REFUND_EVENTS = {"charge.refunded", "charge.refund.updated", "refund.created", "refund.updated", "refund.failed"}


def _error(status: int, code: str, message: str):
    return {"code": code, "message": message, "errors": {}}, status


def webhook_secrets() -> list[str]:
    """``HOOKSHOP_STRIPE_WEBHOOK_SECRET``; several, comma separated, while an endpoint's secret is rolled."""
    return SETTINGS.get("WEBHOOK_SECRET") or []


def verify(raw: bytes, header: str | None, secrets: list[str]) -> None:
    """The SDK's verifier, with any of the secrets; then refuse timestamps from the future."""
    error: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(raw, header, secret, TOLERANCE)
            break
        except stripe.SignatureVerificationError as exc:
            error = exc
    else:  # no secret took it (handle() refuses the events before any secret is set)
        raise error or stripe.SignatureVerificationError("No webhook secret value was provided", header, raw)
    assert header is not None  # verify_header refuses a missing header
    timestamp = int(next(p.split("=", 1)[1] for p in header.split(",") if p.strip().startswith("t=")))
    if timestamp > time.time() + TOLERANCE:
        raise stripe.SignatureVerificationError("Timestamp is in the future (more than 5 minutes ahead)",
                                                header, raw)


def handle(request):
    raw = request.get_data()
    secrets = webhook_secrets()
    if not secrets:
        return _error(400, "webhook_not_configured",
                      "HOOKSHOP_STRIPE_WEBHOOK_SECRET is not set: Stripe events are refused until it is")
    try:
        verify(raw, request.headers.get("Stripe-Signature"), secrets)
    except stripe.SignatureVerificationError as exc:
        return _error(400, "invalid_signature", f"Stripe-Signature rejected: {exc.user_message or exc}")
    try:
        event = json.loads(raw)
    except ValueError:
        return _error(400, "invalid_json", "the body is not JSON")
    obj = (event.get("data") or {}).get("object") if isinstance(event, dict) else None
    if not isinstance(obj, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        return _error(400, "invalid_event", "not a Stripe event: id, type and data.object are needed")
    event_id, event_type = event["id"], event["type"]
    if event_type not in PAYMENT_EVENTS | REFUND_EVENTS:
        return {"received": True, "ignored": f"hookshop does not use {event_type} events"}, 200
    duplicate = inbox_seen(SOURCE, event_id) is not None
    end_read()
    if duplicate:
        return {"received": True, "duplicate": True}, 200
    try:
        return _process(event_id, event_type, obj)
    except (StripeUnavailable, StripeRefused) as exc:
        reset_session()
        return _error(502, "provider_unavailable",
                      f"could not read the payment from Stripe: {exc}; nothing was recorded, Stripe retries the event")


def _intent_row(**where) -> StripeOperation | None:
    conditions = [getattr(StripeOperation, k) == v for k, v in where.items()]
    row = db.session.execute(select(StripeOperation).where(StripeOperation.operation == "intent", *conditions)
                             ).scalar_one_or_none()
    end_read()
    return row


def _process(event_id: str, event_type: str, obj: dict):
    with stripe_client() as client:
        pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        if not pi_id and obj.get("object") == "refund" and obj.get("charge"):
            pi_id = read(lambda: client.v1.charges.retrieve(obj["charge"])).get("payment_intent")
        if not pi_id:
            return {"received": True, "ignored": "the event names no PaymentIntent"}, 200
        row = _intent_row(payment_intent_id=pi_id)
        try:
            pi = retrieve_intent(client, pi_id)
        except StripeRefused:
            if row is None:  # not this account's intent (404): nothing of ours
                return {"received": True, "ignored": f"{pi_id} is not a hookshop payment"}, 200
            raise
        if row is None:  # ours if its creation never got an answer: the metadata names our key
            key = (pi.get("metadata") or {}).get("idempotency_key")
            row = _intent_row(idempotency_key=key) if key else None
            if row is None:
                return {"received": True, "ignored": f"{pi_id} is not a hookshop payment"}, 200
        refunds = list_refunds(client, pi_id) if event_type in REFUND_EVENTS and pi["status"] == "succeeded" else []
    try:
        with transaction():
            if inbox_seen(SOURCE, event_id):
                return {"received": True, "duplicate": True}, 200
            record_once(SOURCE, event_id, {"type": event_type, "payment_intent": pi_id})
            result = apply_state(row.id, pi, refunds)
    except IntegrityError:  # the same event, committed a moment ago by a concurrent delivery
        reset_session()
        return {"received": True, "duplicate": True}, 200
    return {"received": True, "event": event_id, "payment_intent": pi_id, "result": result}, 200


def _payment(order_id: int, pi_id: str) -> Payment | None:
    return db.session.execute(select(Payment).where(
        Payment.order_id == order_id, Payment.provider == NAME, Payment.reference == pi_id)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def apply_state(row_id: int, pi: dict, refunds: list[dict]) -> str:
    """Inside the caller's transaction: bring the order in line with the intent's state at Stripe."""
    row = db.session.execute(select(StripeOperation).where(StripeOperation.id == row_id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one()
    if row.payment_intent_id is None:
        row.payment_intent_id = pi["id"]
    if row.stripe_status in TERMINAL and pi["status"] not in TERMINAL:
        return "stale"  # a concurrent delivery read an older state: the newer one was applied
    row.stripe_status = pi["status"]
    order_id = row.order_id
    latest = db.session.execute(select(func.max(StripeOperation.attempt)).where(
        StripeOperation.order_id == order_id, StripeOperation.operation == "intent")).scalar_one()
    outcome = outcome_for(pi)
    order = db.session.get_one(Order, order_id)
    payment = _payment(order_id, pi["id"])
    result = outcome.status
    if outcome.status in ("paid", "authorized"):  # money moved: always recorded
        apply_payment(order_id, NAME, outcome)
    elif order.status == "cancelled" or (payment is not None and payment.status == "voided") or row.attempt != latest:
        result = "unchanged"  # a voided intent, or an older attempt: the order's payment is elsewhere
    else:
        apply_payment(order_id, NAME, outcome)
    for refund in sorted(refunds, key=lambda r: (r.get("created") or 0, r["id"])):
        _apply_refund(order_id, pi["id"], refund)
    return result


def _apply_refund(order_id: int, pi_id: str, refund: dict) -> None:
    payment = _payment(order_id, pi_id)
    if payment is None or payment.status not in ("paid", "partially_refunded", "refunded"):
        return
    recorded = {r.reference: r for r in db.session.execute(select(Refund).where(
        Refund.payment_id == payment.id, Refund.reference.is_not(None))).scalars()}
    status = refund_status(refund.get("status"))
    reason = refund.get("failure_reason") or refund.get("status")
    amount = from_stripe(refund["amount"], payment.currency)
    if amount is None:  # Stripe's refunds always carry an amount: this is no refund to record
        return
    if status != "failed":
        apply_refund(order_id, payment.id, RefundOutcome(amount, refund["id"], status),
                              reason="refunded at Stripe")
    elif refund["id"] in recorded and recorded[refund["id"]].status != "failed":
        apply_refund(order_id, payment.id, RefundOutcome(
            amount, f"{refund['id']}:failed", "failed",
            message=f"Stripe refund {refund['id']} failed after it was recorded ({reason}): the money did not "
                    "go back, check the Stripe dashboard"))
    else:
        apply_refund(order_id, payment.id, RefundOutcome(
            amount, refund["id"], "failed", message=f"Stripe refund {refund['id']} failed ({reason})"))
