"""Payments: starting or recording payment with the order's provider, applying
provider outcomes (also from webhooks), refunds.

Providers are called outside any transaction; their outcome is applied in a
short transaction under the order's lock. Applying the same outcome twice (a
retried call, a redelivered webhook) changes nothing the second time: payments
are matched on (provider, reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from engine.db import before_outside_call, db, transaction
from engine.domain import transitions as tx
from engine.errors import Conflict, DomainError, PaymentFailed, ProviderUnavailable, ValidationFailed
from engine.models import Order, Payment
from engine.plugins import registry
from engine.services import orders as order_service


@dataclass
class PaymentOutcome:
    """What a provider says about a payment.

    ``status``: ``paid`` (money captured), ``authorized`` (held, to capture
    later), ``pending`` (waiting for the customer or a webhook), ``failed``.
    """

    status: str
    amount: int
    reference: str
    message: str = ""
    fee: int | None = None
    client_secret: str | None = None
    data: dict = field(default_factory=dict)


@dataclass
class RefundOutcome:
    amount: int
    reference: str
    status: str = "succeeded"  # succeeded, pending, failed
    message: str = ""


def provider_for(order: Order):
    try:
        return registry().providers[order.payment_provider]
    except KeyError:
        raise Conflict(f"payment provider {order.payment_provider!r} is not enabled",
                       code="provider_disabled") from None


def pay_order(order_id: int, *, amount: int | None = None, reference: str | None = None,
              payment_method: str | None = None) -> Order:
    """Start or record payment with the order's provider (``POST /orders/{id}/pay``)."""
    order = order_service.get_order(order_id)
    tx.check(order.status, "pay", order.held_from)
    remaining = order.total - order.paid_total
    if amount is not None and not 0 < amount <= remaining:
        raise ValidationFailed(f"amount must be between 1 and {remaining}",
                               errors={"amount": [f"must be between 1 and {remaining} (still due)"]})
    provider = provider_for(order)
    before_outside_call()
    try:
        outcome = provider.pay(order, payment_method=payment_method,
                               data={"amount": amount if amount is not None else remaining, "reference": reference})
    except DomainError:
        raise
    except Exception as exc:  # the provider is down or broke: nothing was written
        db.session.rollback()
        with transaction():
            order = order_service.get_order(order_id, lock=True)
            order_service.note(order, "payment_error", f"{provider.name}: {exc}", provider=provider.name)
        raise ProviderUnavailable(f"payment provider {provider.name} failed: {exc}; try again later") from exc
    order = apply_payment(order_id, provider.name, outcome)
    if outcome.status == "failed":
        raise PaymentFailed(outcome.message or "the payment was declined",
                            errors={"payment": [outcome.message or "declined"]})
    return order


def _payment(order: Order, provider: str, reference: str | None) -> Payment | None:
    if not reference:
        return None
    return db.session.execute(select(Payment).where(
        Payment.order_id == order.id, Payment.provider == provider, Payment.reference == reference)).scalar_one_or_none()


def apply_payment(order_id: int, provider: str, outcome: PaymentOutcome) -> Order:
    """Apply a provider's outcome to the order (idempotent per provider reference)."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        payment = _payment(order, provider, outcome.reference)
        if payment is None:
            payment = Payment(order_id=order.id, provider=provider, amount=outcome.amount, currency=order.currency,
                              status="new", reference=outcome.reference, refunded_amount=0, fee=outcome.fee,
                              data={})
            db.session.add(payment)
            if "payments" in order.__dict__:
                order.payments.append(payment)
        if outcome.fee is not None:
            payment.fee = outcome.fee
        if outcome.client_secret:
            payment.data = {**(payment.data or {}), "client_secret": outcome.client_secret}
        if outcome.data:
            payment.data = {**(payment.data or {}), **outcome.data}
        if payment.status == outcome.status or payment.status in ("paid", "refunded", "partially_refunded"):
            return order  # already applied
        history = list((payment.data or {}).get("history", []))
        history.append(outcome.status)
        payment.data = {**(payment.data or {}), "history": history}
        previous, payment.status = payment.status, outcome.status
        if outcome.status == "paid":
            payment.amount = outcome.amount
            record_paid_locked(order, provider, outcome.amount, outcome.reference, payment=payment,
                               capture=previous == "authorized")
        elif outcome.status == "failed":
            order.payment_status = "failed"
            order_service.note(order, "payment_failed", outcome.message or f"{provider}: payment declined",
                               provider=provider, reference=outcome.reference)
        elif outcome.status == "authorized":
            # an authorisation of everything still due is the provider's confirmation: the order goes
            # to the warehouse (``paid`` with payment_status ``authorized``); the capture comes later
            payment.amount = outcome.amount
            order.payment_status = "authorized"
            if (outcome.amount >= order.total - order.paid_total
                    and "pay" in tx.allowed_actions(order.status, order.held_from)):
                if payment.id is None:
                    db.session.flush()
                order_service.move(order, "pay")
                order_service.stage(order, "order_paid", f"{provider}: {outcome.amount} authorised, to be captured",
                                    payment_id=payment.id, amount=outcome.amount, provider=provider, captured=False)
            else:
                order_service.note(order, "payment_authorized", f"{provider}: {outcome.amount} authorised",
                                   provider=provider, reference=outcome.reference)
        else:
            order.payment_status = "pending"
            order_service.note(order, "payment_pending", outcome.message or f"{provider}: waiting for payment",
                               provider=provider, reference=outcome.reference)
    return order


def record_paid_locked(order: Order, provider: str, amount: int, reference: str | None, *,
                       payment: Payment | None = None, note_text: str | None = None, capture: bool = False) -> None:
    """Count ``amount`` as paid on the locked order; move it to ``paid`` once fully paid.

    ``capture``: the money of an earlier authorisation was captured (the order may have moved on already)."""
    if payment is None:
        payment = Payment(order_id=order.id, provider=provider, amount=amount, currency=order.currency,
                          status="paid", reference=reference, refunded_amount=0, data={"history": ["paid"]})
        db.session.add(payment)
        if "payments" in order.__dict__:
            order.payments.append(payment)
    if payment.id is None:
        db.session.flush()
    order.paid_total += amount
    if order.paid_total < order.total:
        order.payment_status = "partially_paid"
        order_service.note(order, "payment_received", f"{amount} received, {order.total - order.paid_total} due",
                           amount=amount, provider=provider)
        return
    order.payment_status = "paid"
    allowed = tx.allowed_actions(order.status, order.held_from)
    if "pay" in allowed:
        order_service.move(order, "pay")
        order_service.stage(order, "order_paid", note_text or f"paid with {provider}", payment_id=payment.id,
                            amount=order.paid_total, provider=provider, captured=True)
    elif capture:
        order_service.note(order, "payment_captured", f"{provider}: {amount} captured", amount=amount,
                           provider=provider, reference=reference)
    else:
        order_service.note(order, "payment_unexpected",
                           f"payment of {amount} received while the order is {order.status}: refund it if needed",
                           amount=amount, provider=provider)


def refund_order(order_id: int, amount: int, reason: str = "") -> Order:
    """Refund ``amount`` over the order's paid payments (newest first); never more than paid minus refunded."""
    order = order_service.get_order(order_id)
    refundable = order.paid_total - order.refunded_total
    if amount <= 0 or amount > refundable:
        raise ValidationFailed(f"refund must be between 1 and {refundable}",
                               errors={"amount": [f"must be between 1 and {refundable} (paid minus refunded)"]})
    provider = provider_for(order)
    payments = [p for p in order.payments if p.status in ("paid", "partially_refunded")]
    before_outside_call()
    left = amount
    for payment in reversed(payments):
        take = min(left, payment.amount - payment.refunded_amount)
        if take <= 0:
            continue
        try:
            outcome = provider.refund(payment, take)
        except DomainError:
            raise
        except Exception as exc:
            raise ProviderUnavailable(f"refund with {provider.name} failed: {exc}; nothing was refunded by this "
                                      "call, try again") from exc
        apply_refund(order_id, payment.id, outcome, reason)
        left -= take
        if left == 0:
            break
    return order_service.get_order(order_id)


def apply_refund(order_id: int, payment_id: int, outcome: RefundOutcome, reason: str = "") -> None:
    """Record a refund once per provider refund reference."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        payment = db.session.get(Payment, payment_id)
        refunds = list((payment.data or {}).get("refunds", []))
        if any(r["reference"] == outcome.reference for r in refunds):
            return
        refunds.append({"reference": outcome.reference, "amount": outcome.amount, "status": outcome.status})
        payment.data = {**(payment.data or {}), "refunds": refunds}
        if outcome.status == "failed":
            order_service.note(order, "refund_failed", outcome.message or "refund failed", payment_id=payment.id)
            return
        payment.refunded_amount += outcome.amount
        payment.status = "refunded" if payment.refunded_amount >= payment.amount else "partially_refunded"
        order.refunded_total += outcome.amount
        order.payment_status = "refunded" if order.refunded_total >= order.paid_total else "partially_refunded"
        order_service.stage(order, "refund_issued", f"refunded {outcome.amount} ({reason or 'no reason given'})",
                            payment_id=payment.id, amount=outcome.amount, reason=reason,
                            reference=outcome.reference)
