"""Refunds: reserve, call, settle.

The amount is *reserved* as a ``pending`` refund under the order's lock (never above paid minus refunded
minus pending), the provider is called with no lock held, and the refund is settled (``succeeded``) or
released (``failed``) under the lock again. Applying the same outcome twice changes nothing the second
time: refunds are matched on (payment, reference). ``engine.services.payments`` re-exports these."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine.contracts import RefundOutcome
from engine.db import before_outside_call, db, transaction, utcnow
from engine.errors import Conflict, DomainError, ProviderUnavailable
from engine.models import Order, Payment, Refund
from engine.services import orders as order_service
from engine.services.payment_providers import provider_for


def _pending_refunds(order: Order) -> list[Refund]:
    return list(db.session.execute(select(Refund).where(Refund.order_id == order.id, Refund.status == "pending")
                                   .execution_options(populate_existing=True)).scalars())


def refundable_locked(order: Order) -> int:
    """What may still be refunded on the locked order: paid minus refunded minus pending refunds."""
    pending = db.session.execute(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.order_id == order.id, Refund.status == "pending")).scalar_one()
    return order.paid_total - order.refunded_total - pending


def reserve_refunds_locked(order: Order, amount: int, reason: str, return_id: int | None = None) -> list[int]:
    """Reserve ``amount`` as pending refunds over the order's paid payments (newest first).

    The order must be locked. Refused with a 409 when it exceeds paid minus refunded minus pending
    (``refund_exceeds_refundable``) or while another refund of the order is pending
    (``refund_in_progress``; a partial unique index backs it)."""
    if _pending_refunds(order):
        raise Conflict(f"a refund of order {order.number} is in progress; try again when it is settled",
                       code="refund_in_progress")
    refundable = order.paid_total - order.refunded_total
    if not 0 < amount <= refundable:
        raise Conflict(f"a refund of {amount} exceeds what can be refunded on order {order.number} ({refundable}: "
                       "paid minus refunded)", code="refund_exceeds_refundable",
                       errors={"amount": [f"must be between 1 and {refundable} (paid minus refunded)"]})
    payments = db.session.execute(select(Payment).where(
        Payment.order_id == order.id, Payment.status.in_(("paid", "partially_refunded")))
        .order_by(Payment.id.desc()).execution_options(populate_existing=True)).scalars().all()
    left, refunds = amount, []
    for payment in payments:
        take = min(left, payment.amount - payment.refunded_amount)
        if take <= 0:
            continue
        refunds.append(Refund(order_id=order.id, payment_id=payment.id, return_id=return_id, amount=take,
                              status="pending", reason=reason))
        left -= take
        if left == 0:
            break
    if left:
        raise Conflict(f"the order's captured payments cover only {amount - left} of the refund of {amount}",
                       code="refund_exceeds_refundable",
                       errors={"amount": [f"at most {amount - left} is captured and not refunded"]})
    db.session.add_all(refunds)
    db.session.flush()
    return [r.id for r in refunds]


def refund_order(order_id: int, amount: int, reason: str = "") -> Order:
    """Refund ``amount`` over the order's paid payments (newest first); never more than paid minus refunded."""
    try:
        with transaction():
            order = order_service.get_order(order_id, lock=True)
            provider_for(order)
            refund_ids = reserve_refunds_locked(order, amount, reason)
    except IntegrityError:  # a concurrent refund's reservation won the partial unique index
        db.session.rollback()
        raise Conflict(f"a refund of order {order_id} is in progress; try again when it is settled",
                       code="refund_in_progress") from None
    execute_refunds(order_id, refund_ids)
    return order_service.get_order(order_id)


def execute_refunds(order_id: int, refund_ids: list[int]) -> None:
    """Call the provider for each reserved refund (no lock held) and settle it; a provider failure
    releases the refund (``failed``) and the ones not tried yet, and raises."""
    for index, refund_id in enumerate(refund_ids):
        refund = db.session.get_one(Refund, refund_id)
        # the payment as committed now (its refunded amount keys the provider's idempotency)
        payment = db.session.execute(select(Payment).where(Payment.id == refund.payment_id)
                                     .execution_options(populate_existing=True)).scalar_one()
        provider = provider_for(order_service.get_order(order_id))
        before_outside_call()
        try:
            outcome = provider.refund(payment, refund.amount)
        except BaseException as exc:
            db.session.rollback()
            message = exc.message if isinstance(exc, DomainError) else f"{provider.name}: {exc}"
            for rest in refund_ids[index:]:
                settle_refund(rest, None, failure=message)
            if isinstance(exc, DomainError) or not isinstance(exc, Exception):
                raise
            raise ProviderUnavailable(f"refund with {provider.name} failed: {exc}; nothing was refunded by this "
                                      "call, try again") from exc
        settle_refund(refund_id, outcome)


# a pending refund older than this was left by a process that died during its provider call
REFUND_LEASE = timedelta(minutes=10)


def retry_stale_refunds(now=None) -> int:
    """Call the provider again for refunds left ``pending`` by a process that died mid-call, and settle
    them (the sweeper and ``hookshop relay`` run it). Safe because a provider's refund of one payment
    and amount is idempotent (Stripe: the same idempotency key, so a refund it already made is
    answered again, not made twice). Returns how many were settled."""
    cutoff = (now or utcnow()) - REFUND_LEASE
    stale = db.session.execute(select(Refund.order_id, Refund.id).where(
        Refund.status == "pending", Refund.created_at <= cutoff).order_by(Refund.id)).all()
    db.session.commit()
    settled = 0
    for order_id, refund_id in stale:
        try:
            execute_refunds(order_id, [refund_id])
            settled += 1
        except DomainError:  # released (failed) with the provider's reason on the timeline
            db.session.rollback()
    return settled


def settle_refund(refund_id: int, outcome: RefundOutcome | None, failure: str = "") -> None:
    """Settle a reserved refund under the order's lock (idempotent: a settled refund stays as it is)."""
    with transaction():
        refund = db.session.get_one(Refund, refund_id)
        order = order_service.get_order(refund.order_id, lock=True)
        refund = db.session.execute(select(Refund).where(Refund.id == refund_id)
                                    .execution_options(populate_existing=True)).scalar_one()
        if refund.status != "pending":
            return
        refund.settled_at = utcnow()
        if outcome is None or outcome.status == "failed":
            refund.status, refund.message = "failed", (outcome.message if outcome else failure) or "refund failed"
            order_service.note(order, "refund_failed", refund.message, payment_id=refund.payment_id,
                               refund_id=refund.id, amount=refund.amount)
            return
        twin = db.session.execute(select(Refund).where(
            Refund.payment_id == refund.payment_id, Refund.reference == outcome.reference)).scalar_one_or_none()
        if twin is not None:  # the provider's webhook recorded this refund first
            refund.status, refund.message = "superseded", f"recorded from the provider as refund {twin.id}"
            return
        refund.reference = outcome.reference
        _count_refund_locked(order, refund, outcome.amount, outcome.message)


def _count_refund_locked(order: Order, refund: Refund, amount: int, message: str = "") -> None:
    payment = db.session.execute(select(Payment).where(Payment.id == refund.payment_id)
                                 .execution_options(populate_existing=True)).scalar_one()
    refund.status, refund.amount, refund.message = "succeeded", amount, message or None
    payment.refunded_amount += amount
    payment.status = "refunded" if payment.refunded_amount >= payment.amount else "partially_refunded"
    order.refunded_total += amount
    order.payment_status = "refunded" if order.refunded_total >= order.paid_total else "partially_refunded"
    order_service.stage(order, "refund_issued", f"refunded {amount} ({refund.reason or 'no reason given'})",
                        payment_id=payment.id, refund_id=refund.id, amount=amount, reason=refund.reason,
                        reference=refund.reference)
    if refund.return_id is not None:  # the return is resolved with its last refund, in the same transaction
        db.session.flush()
        still_pending = db.session.execute(select(func.count(Refund.id)).where(
            Refund.return_id == refund.return_id, Refund.status == "pending")).scalar_one()
        if not still_pending:
            from engine.models import Return

            order_return = db.session.execute(select(Return).where(Return.id == refund.return_id).with_for_update()
                                              .execution_options(populate_existing=True)).scalar_one()
            if order_return.status == "received":
                order_return.status, order_return.resolved_at = "resolved", utcnow()


def apply_refund(order_id: int, payment_id: int, outcome: RefundOutcome, reason: str = "") -> None:
    """Record a refund the provider reports (a webhook, its dashboard), once per provider reference."""
    with transaction():
        order = order_service.get_order(order_id, lock=True)
        known = db.session.execute(select(Refund).where(
            Refund.payment_id == payment_id, Refund.reference == outcome.reference)).scalar_one_or_none()
        if known is not None:
            return
        refund = Refund(order_id=order.id, payment_id=payment_id, amount=max(outcome.amount, 1), status="failed",
                        reference=outcome.reference, reason=reason, settled_at=utcnow())
        db.session.add(refund)
        db.session.flush()
        if outcome.status == "failed":
            refund.message = outcome.message or "refund failed"
            order_service.note(order, "refund_failed", refund.message, payment_id=payment_id, refund_id=refund.id)
            return
        # decided here, under the lock: never more than the payment and the order can still give back
        payment = db.session.execute(select(Payment).where(Payment.id == payment_id)
                                     .execution_options(populate_existing=True)).scalar_one()
        room = min(payment.amount - payment.refunded_amount, order.paid_total - order.refunded_total)
        if outcome.amount > room:
            order_service.note(order, "refund_beyond_paid",
                               f"the provider reports a refund of {outcome.amount} while {max(room, 0)} was left to "
                               "refund: check the payment at the provider", payment_id=payment_id,
                               reference=outcome.reference, amount=outcome.amount)
        if room <= 0:
            refund.message = "nothing was left to refund"
            return
        _count_refund_locked(order, refund, min(outcome.amount, room), outcome.message)
