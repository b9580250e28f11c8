"""The conformance kit for plugin authors.

Use it from your plugin's tests (it is also a pytest plugin, loaded
automatically once hookshop is installed, giving the fixtures below):

* ``check_plugin(plugin)`` — every hookimpl names a known hook with arguments
  the hook provides.
* ``check_carrier(carrier, order)`` — the carrier protocol: rates and a shipment.
* ``check_payment_provider(provider, order)`` — the provider protocol: pay, refund.
* fixtures ``hookshop_plugins`` (override: a list of ``(name, plugin)``),
  ``hookshop_app`` (an app on a fresh SQLite file with those plugins),
  ``hookshop_api`` (a test client with an admin API key: ``.get(path)``,
  ``.post(path, json)``, paths under ``/api/v1``).
"""

from __future__ import annotations

import inspect
from datetime import date

from engine import hookspecs


class ConformanceError(AssertionError):
    """A plugin does not keep a contract of docs/plugins.md."""


def check_plugin(plugin) -> list[str]:
    """Check every hook implementation of ``plugin``; returns the hook names it implements."""
    implemented = []
    # isroutine, not callable: a module that imports flask's current_app or request would
    # otherwise have those proxies evaluated outside an app context (RuntimeError)
    for name, func in inspect.getmembers(plugin, inspect.isroutine):
        if not hasattr(func, "hookshop_impl"):
            continue
        spec = getattr(hookspecs, name, None)
        if spec is None or not hasattr(spec, "hookshop_spec"):
            raise ConformanceError(f"{name} is not a hookshop hook (see docs/plugins.md for the list)")
        allowed = set(inspect.signature(spec).parameters)
        wanted = set(inspect.signature(func).parameters) - {"self"}
        extra = wanted - allowed
        if extra:
            raise ConformanceError(f"{name} asks for {sorted(extra)}; the hook provides {sorted(allowed)}")
        implemented.append(name)
    return sorted(implemented)


def check_carrier(carrier, order) -> None:
    """Rates and a shipment for ``order`` (call inside an app context)."""
    from engine.domain.money import is_currency
    from engine.services.shipping import Rate, ShipmentInfo

    for attribute in ("name", "services", "rates", "create_shipment"):
        if not hasattr(carrier, attribute):
            raise ConformanceError(f"a carrier needs {attribute!r}")
    rates = carrier.rates(order)
    if not rates or not all(isinstance(rate, Rate) for rate in rates):
        raise ConformanceError("rates(order) must return a non-empty list of engine.services.shipping.Rate")
    for rate in rates:
        if rate.carrier != carrier.name or rate.service not in carrier.services:
            raise ConformanceError(f"rate {rate} names another carrier or an unknown service")
        if not isinstance(rate.price, int) or rate.price < 0 or not is_currency(rate.currency):
            raise ConformanceError(f"rate {rate}: price must be integer minor units and currency an active "
                                   "ISO 4217 code")
        if rate.estimated_delivery is not None and rate.estimated_delivery < date.today():
            raise ConformanceError(f"rate {rate}: estimated delivery is in the past")
    info = carrier.create_shipment(order, carrier.services[0])
    if not isinstance(info, ShipmentInfo) or not info.tracking_number:
        raise ConformanceError("create_shipment must return a ShipmentInfo with a tracking number")


def check_payment_provider(provider, order) -> None:
    """Pay and refund ``order`` with the provider (call inside an app context)."""
    from engine.services.payments import PaymentOutcome, RefundOutcome

    for attribute in ("name", "pay", "refund", "void"):
        if not hasattr(provider, attribute):
            raise ConformanceError(f"a payment provider needs {attribute!r}")
    outcome = provider.pay(order, payment_method=None, data={"amount": order.total, "reference": None})
    if not isinstance(outcome, PaymentOutcome) or outcome.status not in ("paid", "authorized", "pending", "failed"):
        raise ConformanceError("pay must return a PaymentOutcome with status paid, authorized, pending or failed")
    if not outcome.reference:
        raise ConformanceError("a PaymentOutcome needs the provider's reference (it deduplicates outcomes)")
    if outcome.status == "paid":
        from engine.models import Payment

        payment = Payment(order_id=order.id, provider=provider.name, amount=outcome.amount, currency=order.currency,
                          status="paid", reference=outcome.reference, refunded_amount=0, data={})
        refund = provider.refund(payment, 1)
        if not isinstance(refund, RefundOutcome) or refund.amount != 1 or not refund.reference:
            raise ConformanceError("refund must return a RefundOutcome with the amount and a reference")
