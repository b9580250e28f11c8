"""Payments: starting or recording payment with the order's provider, applying
provider outcomes (also from webhooks), refunds.

Every money decision is made under the order's lock and providers are called
with no lock held (docs/design-decisions.md, "Money and stock under one lock"):

* pay: the order is *claimed* for ``pay`` under its lock (what is due is checked
  there; a second pay, a ship or a cancel meanwhile is a 409), the provider is
  called, and its outcome is applied under the lock again, ending the claim;
* refund: the amount is *reserved* as a ``pending`` refund under the lock (never
  above paid minus refunded minus pending), the provider is called, and the
  refund is settled (``succeeded``) or released (``failed``) under the lock.

Applying the same outcome twice (a retried call, a redelivered webhook) changes
nothing the second time: payments are matched on (provider, reference), refunds
on (payment, reference).
"""

from __future__ import annotations

from sqlalchemy import select

from engine.contracts import PaymentOutcome, RefundOutcome
from engine.db import before_outside_call, db, transaction
from engine.domain import transitions as tx
from engine.errors import Conflict, DomainError, PaymentFailed, ProviderUnavailable
from engine.models import Order, Payment
from engine.services import orders as order_service
from engine.services.payment_providers import provider_for
from engine.services.refunds import (
    REFUND_LEASE,
    apply_refund,
    execute_refunds,
    refund_order,
    refundable_locked,
    reserve_refunds_locked,
    retry_stale_refunds,
    settle_refund,
)

# the contract's values and the refunds' functions, kept importable from here
__all__ = ["REFUND_LEASE", "PaymentOutcome", "RefundOutcome", "apply_payment", "apply_refund", "execute_refunds",
           "pay_order", "provider_for", "record_paid_locked", "refund_order", "refundable_locked",
           "reserve_refunds_locked", "retry_stale_refunds", "settle_for_cancel", "settle_refund"]


def _check_due(amount: int | None):
    def check(order: Order) -> None:
        provider_for(order)
        due = order.total - order.paid_total
        if due <= 0:
            raise Conflict(f"nothing is due on order {order.number}: {order.paid_total} of {order.total} is paid",
                           code="nothing_due", errors={"amount": ["nothing is due"]})
        if amount is not None and amount > due:
            raise Conflict(f"a payment of {amount} would exceed what is due on order {order.number} ({due}); "
                           "pay at most what is due", code="overpayment",
                           errors={"amount": [f"at most {due} is due"]})
    return check


def pay_order(order_id: int, *, amount: int | None = None, reference: str | None = None,
              payment_method: str | None = None) -> Order:
    """Start or record payment with the order's provider (``POST /orders/{id}/pay``).

    One decision under the order's lock: the order is claimed for ``pay`` (what is due checked
    there), the provider is called with no lock held, its outcome applied under the lock."""
    order, token = order_service.claim(order_id, "pay", _check_due(amount))
    provider = provider_for(order)
    due = order.total - order.paid_total
    try:
        outcome = provider.pay(order, payment_method=payment_method,
                               data={"amount": amount if amount is not None else due, "reference": reference})
    except DomainError:
        order_service.release_claim(order_id, token)
        raise
    except Exception as exc:  # the provider is down or broke: nothing was written
        db.session.rollback()
        with transaction():
            order = order_service.get_order(order_id, lock=True)
            order_service.end_claim_locked(order, token)
            order_service.note(order, "payment_error", f"{provider.name}: {exc}", provider=provider.name)
        raise ProviderUnavailable(f"payment provider {provider.name} failed: {exc}; try again later") from exc
    except BaseException:
        order_service.release_claim(order_id, token)
        raise
    order = apply_payment(order_id, provider.name, outcome, claim_token=token)
    if outcome.status == "failed":
        raise PaymentFailed(outcome.message or "the payment was declined",
                            errors={"payment": [outcome.message or "declined"]})
    return order


def _payment(order: Order, provider: str, reference: str | None) -> Payment | None:
    if not reference:
        return None
    return db.session.execute(select(Payment).where(
        Payment.order_id == order.id, Payment.provider == provider, Payment.reference == reference)).scalar_one_or_none()


def apply_payment(order_id: int, provider: str, outcome: PaymentOutcome, claim_token: str | None = None) -> Order:
    """Apply a provider's outcome to the order (idempotent per provider reference); ends the
    ``pay`` claim with ``claim_token`` in the same transaction."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        order_service.end_claim_locked(order, claim_token)
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

    ``capture``: the money of an earlier authorisation was captured (the order may have moved on already).
    Money a provider reports is a fact and always recorded; more than was due is noted for staff."""
    if payment is None:
        payment = Payment(order_id=order.id, provider=provider, amount=amount, currency=order.currency,
                          status="paid", reference=reference, refunded_amount=0, data={"history": ["paid"]})
        db.session.add(payment)
        if "payments" in order.__dict__:
            order.payments.append(payment)
    if payment.id is None:
        db.session.flush()
    due = order.total - order.paid_total
    order.paid_total += amount
    if amount > due > 0 or (due <= 0 < amount and not capture):
        order_service.note(order, "payment_overpaid",
                           f"{provider} reported {amount} while {max(due, 0)} was due: refund the difference",
                           amount=amount, due=max(due, 0), provider=provider, reference=reference)
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




def settle_for_cancel(order_id: int, reason: str) -> str:
    """Void pending and authorised payments, then refund what was captured (for a claimed cancel).

    Returns what was done: ``none``, ``voided`` or ``refunded``. A provider failure raises and
    leaves what was already done recorded (a voided payment stays voided)."""
    order = order_service.get_order(order_id)
    settled = "none"
    to_void = [p for p in order.payments if p.status in ("authorized", "pending")]
    if to_void:
        provider = provider_for(order)
        for payment in to_void:
            before_outside_call()
            try:
                provider.void(payment)
            except DomainError:
                raise
            except Exception as exc:
                raise ProviderUnavailable(f"could not void payment {payment.reference} with {provider.name}: "
                                          f"{exc}; the order is not cancelled, try again") from exc
            with transaction():
                order_service.get_order(order_id, lock=True)
                db.session.get_one(Payment, payment.id).status = "voided"
        settled = "voided"
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        refundable = refundable_locked(order)
        refund_ids = reserve_refunds_locked(order, refundable, reason) if refundable > 0 else []
    if refund_ids:
        execute_refunds(order_id, refund_ids)
        settled = "refunded"
    return settled
