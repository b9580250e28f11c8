"""The ``stripe`` payment provider: PaymentIntents through the official SDK.

Every request that changes something at Stripe goes through ``operations.send``: its
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

import stripe
from sqlalchemy import select

from engine.plugin_api import (
    Conflict,
    Payment,
    PaymentFailed,
    PaymentOutcome,
    PaymentProvider,
    RefundOutcome,
    ValidationFailed,
    apply_payment,
    db,
    is_currency,
    transaction,
)

from .models import StripeOperation
from .operations import claim, intent_rows, latest_operation, record, send
from .stripe_api import (
    capture_method,
    describe,
    from_stripe,
    list_refunds,
    payment_method_types,
    read,
    retrieve_intent,
    stripe_client,
    to_stripe,
)

log = logging.getLogger("hookshop.payments_stripe")

NAME = "stripe"
# the statuses in which Stripe lets us cancel a PaymentIntent
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
TERMINAL = ("succeeded", "canceled")








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
        assert row.amount is not None, "an intent's row is claimed with its amount"
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
        assert payment.reference, "a Stripe payment is recorded with its PaymentIntent id"
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
        assert pi_id, "a Stripe payment is recorded with its PaymentIntent id"
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
        open_ids = [r.payment_intent_id for r in intent_rows(order_id)
                    if r.payment_intent_id and r.stripe_status not in TERMINAL]
        if not open_ids:
            return
        with stripe_client() as client:
            for pi_id in open_ids:
                pi = retrieve_intent(client, pi_id)
                if pi["status"] in CANCELABLE:
                    self._cancel(client, order_id, pi["id"])
                else:
                    self._remember(order_id, pi)

    # -------------------------------------------------------------- webhook

    def handle_webhook(self, request):
        from .webhook import handle

        return handle(request)
