"""The ``stripe`` payment provider: PaymentIntents through the official SDK.

Every request that changes something at Stripe goes through ``_send``: its
idempotency key comes from a ``payments_stripe_operations`` row committed
*before* the request, and a retry of the same operation reuses it. Before acting
on an existing PaymentIntent the provider reads its current state from Stripe,
so a retry after a lost answer never charges, captures, cancels or refunds
twice, even against a server that ignores idempotency keys.

Stripe's answers become ``PaymentOutcome``s (``outcome_for``) that the core
applies with ``engine.plugin_api.apply_payment``.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import contextmanager

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    Conflict,
    Payment,
    PaymentFailed,
    PaymentOutcome,
    PaymentProvider,
    RefundOutcome,
    ValidationFailed,
    apply_payment,
    currency_code,
    db,
    end_read,
    exponent,
    format_money,
    is_currency,
    reset_session,
    transaction,
)

from .models import StripeOperation
from .settings import SETTINGS

log = logging.getLogger("hookshop.payments_stripe")

NAME = "stripe"
# the statuses in which Stripe lets us cancel a PaymentIntent
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
TERMINAL = ("succeeded", "canceled")
EXPAND = ["latest_charge.balance_transaction"]  # the fee, when Stripe knows it


class StripeUnavailable(Exception):
    """Stripe could not be reached, was rate limiting, or failed inside: try again later."""


class StripeRefused(Exception):
    """Stripe refused the request (not a decline): the message says why."""


# ------------------------------------------------------------------ amounts: ISO 4217 minor units <-> Stripe's

# Stripe's API counts amounts in each currency's minor unit, with two exceptions it keeps for
# backwards compatibility (https://docs.stripe.com/currencies#special-cases): ISK has no minor
# unit in ISO 4217 but is two-decimal in Stripe's API (whole krónur only: multiples of 100), and
# MGA has two in ISO 4217 but is zero-decimal at Stripe. Every other currency, zero-decimal ones
# (JPY, KRW, ...) and three-decimal ones (KWD, BHD, ...) included, is sent as it is stored.
STRIPE_EXPONENTS = {"ISK": 2, "MGA": 0}


def _exponents(currency: str) -> tuple[int, int]:
    ours = exponent(currency)
    return ours, STRIPE_EXPONENTS.get(currency_code(currency), ours)


def to_stripe(amount: int, currency: str) -> int:
    """Our minor units -> the ``amount`` Stripe expects; ``ValidationFailed`` when Stripe cannot charge it.

    Stripe takes three-decimal currencies (KWD, BHD, JOD, OMR, TND) only with a last digit of 0."""
    ours, theirs = _exponents(currency)
    if ours == 3 and amount % 10:
        raise ValidationFailed(
            f"Stripe charges {currency_code(currency)} only in multiples of 10 minor units: "
            f"{format_money(amount, currency)} cannot be charged",
            errors={"amount": [f"{currency_code(currency)} amounts at Stripe end in 0 (e.g. "
                               f"{format_money(amount - amount % 10, currency)})"]})
    if theirs >= ours:
        return amount * 10 ** (theirs - ours)
    whole, rest = divmod(amount, 10 ** (ours - theirs))
    if rest:
        raise ValidationFailed(
            f"Stripe charges {currency_code(currency)} in whole units only: "
            f"{format_money(amount, currency)} cannot be charged",
            errors={"amount": [f"whole {currency_code(currency)} only at Stripe"]})
    return whole


def from_stripe(amount: int | None, currency: str) -> int | None:
    """A Stripe ``amount`` -> our minor units (rounded half up where Stripe's unit is finer)."""
    if amount is None:
        return None
    ours, theirs = _exponents(currency)
    if ours >= theirs:
        return amount * 10 ** (ours - theirs)
    factor = 10 ** (theirs - ours)
    return (amount + factor // 2) // factor


# ------------------------------------------------------------------ settings and client


def capture_method() -> str:
    return SETTINGS.get("CAPTURE")


def payment_method_types() -> list[str]:
    return SETTINGS.get("PAYMENT_METHOD_TYPES")


@contextmanager
def stripe_client():
    """A client for one call of the provider, with the configured API base (a fresh HTTP session)."""
    http = stripe.RequestsClient(timeout=SETTINGS.get("TIMEOUT") or 30)
    options = {"max_network_retries": SETTINGS.get("MAX_NETWORK_RETRIES"), "http_client": http}
    if SETTINGS.get("API_BASE"):
        options["base_addresses"] = {"api": SETTINGS.get("API_BASE").rstrip("/")}
    try:
        yield stripe.StripeClient(SETTINGS.get("SECRET_KEY"), **options)
    finally:
        http.close()


def describe(exc: stripe.StripeError) -> str:
    """A sentence for the order's timeline and the API error."""
    if isinstance(exc, stripe.APIConnectionError):
        text = str(exc)
        if "refused" in text:
            why = "connection refused"
        elif "imed out" in text or "Timeout" in text:
            why = "the request timed out"
        elif "aborted" in text or "Disconnected" in text or "reset" in text:
            why = "the connection was dropped before Stripe answered"
        else:
            why = "network error"
        return (f"Stripe could not be reached ({why}); try again later: the retry reuses the same "
                "idempotency key, so nothing is charged twice")
    if isinstance(exc, stripe.RateLimitError):
        return "Stripe is rate limiting requests (HTTP 429); try again in a moment"
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe rejected the API key: check HOOKSHOP_STRIPE_SECRET_KEY"
    if isinstance(exc, stripe.CardError):
        code = "/".join(c for c in (exc.code, getattr(exc.error, "decline_code", None) if exc.error else None) if c)
        return f"card declined: {exc.user_message or 'the card was declined'}" + (f" ({code})" if code else "")
    if isinstance(exc, stripe.APIError):
        return f"Stripe failed internally (HTTP {exc.http_status}); try again later"
    return f"Stripe refused the request: {exc.user_message or exc} (HTTP {exc.http_status})"


def read(call):
    """A read (retrieve, list): its answer as plain dicts, or StripeUnavailable / StripeRefused."""
    try:
        return call().to_dict()
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise StripeUnavailable(describe(exc)) from exc
    except stripe.StripeError as exc:
        raise StripeRefused(describe(exc)) from exc


def retrieve_intent(client, pi_id: str) -> dict:
    return read(lambda: client.v1.payment_intents.retrieve(pi_id, params={"expand": EXPAND}))


def list_refunds(client, pi_id: str) -> list[dict]:
    return read(lambda: client.v1.refunds.list(params={"payment_intent": pi_id, "limit": 100}))["data"]


# ------------------------------------------------------------------ operations: keys stored before the call


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
        row = db.session.get(StripeOperation, row.id)
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


# ------------------------------------------------------------------ Stripe's state -> the core's outcome


def _charge(pi: dict) -> dict | None:
    charge = pi.get("latest_charge")
    return charge if isinstance(charge, dict) else None


def fee_of(pi: dict) -> int | None:
    """Stripe's fee, in the minor units of the balance transaction's (settlement) currency."""
    charge = _charge(pi)
    txn = charge.get("balance_transaction") if charge else None
    if not isinstance(txn, dict) or txn.get("fee") is None:
        return None
    currency = txn.get("currency") or pi["currency"]
    return from_stripe(txn["fee"], currency) if is_currency(currency) else txn["fee"]


def outcome_for(pi: dict) -> PaymentOutcome:
    """What a PaymentIntent's current state means for the order."""
    status, ref, currency = pi["status"], pi["id"], pi["currency"]
    amount = from_stripe(pi["amount"], currency)
    charge = pi.get("latest_charge")
    data = {"payment_intent": ref, "stripe_status": status, "capture_method": pi.get("capture_method")}
    if charge:
        data["charge"] = charge if isinstance(charge, str) else charge.get("id")
    if status == "succeeded":
        received = from_stripe(pi.get("amount_received") or (_charge(pi) or {}).get("amount_captured"), currency) \
            or amount
        return PaymentOutcome("paid", received, ref, message="captured at Stripe", fee=fee_of(pi), data=data)
    if status == "requires_capture":
        return PaymentOutcome("authorized", from_stripe(pi.get("amount_capturable"), currency) or amount, ref,
                              message="authorised at Stripe, captured when the order ships", data=data)
    if status == "processing":
        return PaymentOutcome("pending", amount, ref, message="Stripe is processing the payment", data=data)
    if status == "canceled":
        reason = pi.get("cancellation_reason")
        return PaymentOutcome("failed", amount, ref, data=data,
                              message="the PaymentIntent was canceled at Stripe" + (f" ({reason})" if reason else ""))
    error = pi.get("last_payment_error")
    if status == "requires_payment_method" and error:
        code = "/".join(c for c in (error.get("code"), error.get("decline_code")) if c)
        what = "card declined" if error.get("code") == "card_declined" else "payment failed"
        return PaymentOutcome("failed", amount, ref, data=data,
                              message=f"{what}: {error.get('message') or 'the payment failed'}"
                              + (f" ({code})" if code else ""))
    if status == "requires_action":
        return PaymentOutcome("pending", amount, ref, client_secret=pi.get("client_secret"), data=data,
                              message="the customer must authenticate the payment (3-D Secure)")
    return PaymentOutcome("pending", amount, ref, client_secret=pi.get("client_secret"), data=data,
                          message="waiting for the customer to pay (the channel has the client_secret)")


def refund_status(status: str | None) -> str:
    if status == "succeeded":
        return "succeeded"
    if status in ("failed", "canceled"):
        return "failed"
    return "pending"


# ------------------------------------------------------------------ the provider


class StripeProvider(PaymentProvider):
    """``pay`` / ``refund`` / ``void`` / ``handle_webhook`` of the core's provider protocol."""

    name = NAME

    # -------------------------------------------------------------- pay

    def pay(self, order, payment_method=None, data=None):
        data = data or {}
        amount = data.get("amount") or order.total - order.paid_total
        try:  # an amount Stripe cannot charge is refused before anything is stored; the order stays placed
            to_stripe(amount, order.currency)
        except ValidationFailed as exc:
            raise PaymentFailed(exc.message, errors=exc.errors) from None
        with stripe_client() as client:
            row = latest_operation(order.id, "intent")
            pi = None
            if row is not None and row.status != "failed" and row.payment_intent_id:
                pi = retrieve_intent(client, row.payment_intent_id)
                record(row, stripe_status=pi["status"])
                finished = pi["status"] == "canceled" or (
                    payment_method and pi["status"] == "requires_payment_method" and pi.get("last_payment_error"))
                if finished:  # a declined or canceled intent: cancel it, and start a fresh one
                    if pi["status"] != "canceled":
                        self._cancel(client, order.id, pi["id"])
                    row, pi = claim(order.id, "intent", amount=amount, new_attempt=True), None
            else:  # none yet, or one whose creation got no answer: the same key again
                row = claim(order.id, "intent", amount=amount)
            if pi is None:
                pi = self._create(client, order, row)
            if payment_method and pi["status"] in ("requires_payment_method", "requires_confirmation"):
                return self._confirm(client, order.id, pi, payment_method)
            return outcome_for(pi)

    def _create(self, client, order, row: StripeOperation) -> dict:
        params = {
            "amount": to_stripe(row.amount, order.currency), "currency": order.currency.lower(),
            "capture_method": capture_method(),
            "payment_method_types": payment_method_types(),
            "metadata": {"order_id": str(order.id), "order_number": order.number, "channel": order.channel or "",
                         "idempotency_key": row.idempotency_key},
        }
        return send(row, lambda opts: client.v1.payment_intents.create(params=params, options=opts))

    def _confirm(self, client, order_id: int, pi: dict, payment_method: str) -> PaymentOutcome:
        pi_id = pi["id"]
        attach = claim(order_id, f"attach:{pi_id}:{payment_method}")
        if attach.status != "succeeded":
            send(attach, lambda opts: client.v1.payment_intents.update(
                pi_id, params={"payment_method": payment_method}, options=opts))
        confirm = claim(order_id, f"confirm:{pi_id}:{payment_method}")
        try:
            send(confirm, lambda opts: client.v1.payment_intents.confirm(pi_id, options=opts))
        except stripe.CardError as exc:
            self._remember(order_id, {"id": pi_id, "status": "requires_payment_method"})
            return PaymentOutcome("failed", from_stripe(pi["amount"], pi["currency"]), pi_id, message=describe(exc),
                                  data={"payment_intent": pi_id, "stripe_status": "requires_payment_method"})
        pi = retrieve_intent(client, pi_id)
        self._remember(order_id, pi)
        return outcome_for(pi)

    def _cancel(self, client, order_id: int, pi_id: str) -> None:
        row = claim(order_id, f"cancel:{pi_id}", payment_intent_id=pi_id)
        if row.status != "succeeded":
            send(row, lambda opts: client.v1.payment_intents.cancel(pi_id, options=opts))
        self._remember(order_id, {"id": pi_id, "status": "canceled"})

    def _remember(self, order_id: int, pi: dict) -> None:
        """Keep the intent's last known status on its row."""
        with transaction():
            row = db.session.execute(select(StripeOperation).where(
                StripeOperation.order_id == order_id, StripeOperation.operation == "intent",
                StripeOperation.payment_intent_id == pi["id"])).scalar_one_or_none()
            if row is not None:
                row.stripe_status = pi["status"]

    # -------------------------------------------------------------- capture (when the order ships)

    def capture(self, payment: Payment) -> None:
        """Capture an authorised payment; idempotent (reads the intent's state first)."""
        with stripe_client() as client:
            pi = retrieve_intent(client, payment.reference)
            if pi["status"] == "requires_capture":
                row = claim(payment.order_id, f"capture:{pi['id']}", payment_intent_id=pi["id"],
                            amount=from_stripe(pi.get("amount_capturable") or pi["amount"], pi["currency"]))
                if row.status != "succeeded":
                    send(row, lambda opts: client.v1.payment_intents.capture(pi["id"], options=opts))
                pi = retrieve_intent(client, pi["id"])
            self._remember(payment.order_id, pi)
        outcome = outcome_for(pi)
        if outcome.status in ("paid", "failed"):  # failed: the authorisation was canceled or expired
            apply_payment(payment.order_id, NAME, outcome)

    # -------------------------------------------------------------- void and refund

    def void(self, payment: Payment) -> None:
        if not payment.reference:
            return
        with stripe_client() as client:
            pi = retrieve_intent(client, payment.reference)
            if pi["status"] == "canceled":
                return
            if pi["status"] in ("succeeded", "processing"):
                raise Conflict(
                    f"the Stripe payment {pi['id']} is {pi['status']}, so it cannot be voided: record it with "
                    f"POST /orders/{payment.order_id}/pay, then cancel again to refund it",
                    code="payment_already_captured")
            self._cancel(client, payment.order_id, pi["id"])

    def refund(self, payment: Payment, amount: int) -> RefundOutcome:
        left = payment.amount - payment.refunded_amount
        if payment.status not in ("paid", "partially_refunded"):
            raise Conflict(f"the Stripe payment {payment.reference} is {payment.status}: only captured money "
                           "can be refunded", code="payment_not_captured")
        if not 0 < amount <= left:
            raise ValidationFailed(f"refund must be between 1 and {left} (captured minus refunded)",
                                   errors={"amount": [f"must be between 1 and {left} (captured minus refunded)"]})
        pi_id = payment.reference
        stripe_amount = to_stripe(amount, payment.currency)
        with stripe_client() as client:
            row = claim(payment.order_id, f"refund:{pi_id}:{payment.refunded_amount}:{amount}",
                        payment_intent_id=pi_id, amount=amount)
            refund = None
            if row.status == "succeeded" and row.result_id:  # done before, its answer was not applied
                refund = read(lambda: client.v1.refunds.retrieve(row.result_id))
            elif row.status == "unknown":  # an earlier try got no answer: did Stripe make the refund?
                refund = next((r for r in list_refunds(client, pi_id)
                               if (r.get("metadata") or {}).get("idempotency_key") == row.idempotency_key), None)
                if refund is not None:
                    record(row, status="succeeded", result_id=refund["id"], error=None)
            if refund is None:
                refund = send(row, lambda opts: client.v1.refunds.create(params={
                    "payment_intent": pi_id, "amount": stripe_amount,
                    "metadata": {"order_id": str(payment.order_id), "idempotency_key": row.idempotency_key}},
                    options=opts))
        status = refund_status(refund.get("status"))
        return RefundOutcome(amount=from_stripe(refund["amount"], payment.currency), reference=refund["id"],
                             status=status, message=f"Stripe refund {refund['id']} {refund.get('status')}"
                             + (f": {refund['failure_reason']}" if refund.get("failure_reason") else ""))

    # -------------------------------------------------------------- after cancellation

    def cancel_open_intents(self, order_id: int) -> None:
        """Cancel the order's intents that are still open at Stripe (e.g. a declined one)."""
        rows = [r for r in intent_rows(order_id) if r.payment_intent_id and r.stripe_status not in TERMINAL]
        if not rows:
            return
        with stripe_client() as client:
            for row in rows:
                pi = retrieve_intent(client, row.payment_intent_id)
                if pi["status"] in CANCELABLE:
                    self._cancel(client, order_id, pi["id"])
                else:
                    self._remember(order_id, pi)

    # -------------------------------------------------------------- webhook

    def handle_webhook(self, request):
        from .webhook import handle

        return handle(request)
