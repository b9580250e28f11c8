"""The Stripe operations of an order, one row each (``payments_stripe_operations``): its idempotency key is
committed *before* the request is sent, and a retry of the same operation reuses it."""

from __future__ import annotations

import secrets

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    db,
    end_read,
    reset_session,
    transaction,
)

from .models import StripeOperation
from .stripe_api import StripeRefused, StripeUnavailable, describe


def latest_operation(order_id: int, operation: str) -> StripeOperation | None:
    row = db.session.execute(select(StripeOperation).where(
        StripeOperation.order_id == order_id, StripeOperation.operation == operation)
        .order_by(StripeOperation.attempt.desc()).limit(1)).scalar_one_or_none()
    end_read()  # no transaction left open while Stripe is called
    return row


def intent_rows(order_id: int) -> list[StripeOperation]:
    rows = list(db.session.execute(select(StripeOperation).where(
        StripeOperation.order_id == order_id, StripeOperation.operation == "intent")
        .order_by(StripeOperation.attempt)).scalars())
    end_read()
    return rows


def claim(order_id: int, operation: str, *, amount: int | None = None, payment_intent_id: str | None = None,
          new_attempt: bool = False) -> StripeOperation:
    """The operation's row, committed before its request is sent.

    The latest attempt is reused (same idempotency key) unless it failed for good or
    ``new_attempt`` is asked; two callers at once end up with the same row."""
    for _ in range(3):
        try:
            with transaction():
                row = db.session.execute(select(StripeOperation).where(
                    StripeOperation.order_id == order_id, StripeOperation.operation == operation)
                    .order_by(StripeOperation.attempt.desc()).limit(1)).scalar_one_or_none()
                if row is not None and row.status != "failed" and not new_attempt:
                    return row
                attempt = row.attempt + 1 if row is not None else 1
                row = StripeOperation(
                    order_id=order_id, operation=operation, attempt=attempt, status="started", amount=amount,
                    payment_intent_id=payment_intent_id,
                    idempotency_key=f"hookshop-o{order_id}-{operation}-a{attempt}-{secrets.token_hex(8)}")
                db.session.add(row)
            return row
        except IntegrityError:  # the same attempt was stored a moment ago by another request: use it
            reset_session()
            new_attempt = False
    raise RuntimeError(f"could not store the Stripe operation {operation} of order {order_id}")


def record(row: StripeOperation, **fields) -> None:
    with transaction():
        row = db.session.get_one(StripeOperation, row.id)
        for name, value in fields.items():
            setattr(row, name, value)


def send(row: StripeOperation, call) -> dict:
    """Send one request with the row's idempotency key; record how it went on the row.

    A decline re-raises ``stripe.CardError``; a network error, a rate limit or a Stripe
    5xx raises ``StripeUnavailable`` (the row keeps its key for the retry), any other
    refusal ``StripeRefused`` (the next try is a new attempt with a new key)."""
    try:
        answer = call({"idempotency_key": row.idempotency_key}).to_dict()
    except stripe.CardError as exc:
        record(row, status="failed", error=describe(exc))
        raise
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        record(row, status="unknown", error=describe(exc))
        raise StripeUnavailable(describe(exc)) from exc
    except stripe.APIError as exc:  # Stripe keeps a 5xx answer under its key: the next try gets a new one
        record(row, status="failed", error=describe(exc))
        raise StripeUnavailable(describe(exc)) from exc
    except stripe.StripeError as exc:
        record(row, status="failed", error=describe(exc))
        raise StripeRefused(describe(exc)) from exc
    fields = {"status": "succeeded", "error": None}
    if answer.get("object") == "payment_intent":
        fields.update(payment_intent_id=answer["id"], stripe_status=answer["status"])
    else:
        fields["result_id"] = answer.get("id")
    record(row, **fields)
    return answer
