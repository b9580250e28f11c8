"""The core's own ``manual`` payment provider: bank transfer, cash on delivery.

Staff record a received payment with ``POST /orders/{id}/pay`` (optional
``amount`` for part payments and ``reference``, e.g. the bank transfer's
reference). Refunds are recorded as made by hand.
"""

from __future__ import annotations

import uuid

from engine import hookimpl
from engine.contracts import PaymentProvider
from engine.services.payments import PaymentOutcome, RefundOutcome


class ManualProvider(PaymentProvider):
    name = "manual"

    def pay(self, order, payment_method=None, data=None):
        data = data or {}
        amount = data.get("amount") or (order.total - order.paid_total)
        reference = data.get("reference") or f"manual-{uuid.uuid4().hex[:12]}"
        return PaymentOutcome(status="paid", amount=amount, reference=reference, message="recorded by staff")

    def refund(self, payment, amount):
        return RefundOutcome(amount=amount, reference=f"manual-refund-{uuid.uuid4().hex[:12]}")

    def void(self, payment):
        return None


@hookimpl
def register_payment_providers():
    return [ManualProvider()]
