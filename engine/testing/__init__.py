"""The conformance kit for plugin authors (``pip install 'hookshop[testing]'``).

Use it from your plugin's tests (it is also a pytest plugin, loaded automatically once hookshop is
installed, giving the fixtures below):

* ``check_plugin(plugin)`` — every hookimpl names a known hook with arguments the hook provides.
* ``check_carrier(carrier, order)`` — the carrier protocol: rates and a shipment.
* ``check_payment_provider(provider, order)`` — the provider protocol: pay, refund.
* ``check_migrations(app)`` — the loaded models and the migrations agree (``hookshop db check``).
* Fixtures (``engine.testing.pytest_plugin``): ``hookshop_app`` (an app on a fresh database whose schema
  the migrations built, on SQLite and on PostgreSQL: ``hookshop_database``), configured by the fixtures
  you override — ``hookshop_plugins`` (extra ``(name, plugin)`` pairs), ``hookshop_only`` (the discovered
  plugins to load; ``None``: all), ``hookshop_settings`` (extra settings); ``hookshop_api`` (a client with
  an API key of every scope); ``hookshop_orders`` (the order factory: ``place(lines)``,
  ``advance(order, until)``); ``hook_recorder`` (records every stage hook call; ``fail[hook] = n``
  makes it raise); ``hookshop_run_jobs(now=None)`` (the worker's sweep, once); ``hookshop_clock`` (a
  frozen clock: ``now``, ``advance(seconds)``).
* Contract test classes (``engine.testing.contracts``) to subclass: ``PaymentProviderContract``,
  ``CarrierContract``, ``SalesChannelContract``, ``ExporterContract``, ``StageHookContract``.
* ``DeliveringClient`` — the fixtures' test client: after each request it waits until the background
  delivery thread has run the stage hooks the request fired (``engine.jobs.drain(app)``), so a test
  sees their effects when the request returns. After calling services directly, call
  ``engine.jobs.drain(app)`` yourself before asserting on a hook's effects.
"""

from __future__ import annotations

import inspect
from datetime import date

from flask.testing import FlaskClient

from engine import hookspecs


class DeliveringClient(FlaskClient):
    """A Flask test client that drains the app's delivery thread after each request
    (``app.test_client_class = DeliveringClient``). Stage hooks still run on that thread,
    after the commit, as in production; the test only waits for them."""

    drain_timeout = 30.0

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        from flask import current_app, has_app_context

        from engine.db import db
        from engine.delivery import drain

        if has_app_context() and current_app._get_current_object() is self.application:
            # the request ran in the test's own app context and so in its session: end the transaction
            # its answer's reads left open (on SQLite a write lock, as in any non-GET request), as the end
            # of a request's own app context would, or the delivery thread could not write
            db.session.commit()
        if not drain(self.application, self.drain_timeout):
            raise AssertionError(f"the stage hooks fired by this request did not finish within {self.drain_timeout:g} s "
                                 "(does a plugin wait for something the test never gives it?)")
        return response


class ConformanceError(AssertionError):
    """A plugin does not keep a contract of docs/plugins.md."""


def check_plugin(plugin, *owners) -> list[str]:
    """Check every hook implementation of ``plugin``; returns the hook names it implements.

    The hooks are the core's and those that ``plugin`` and ``owners`` (the plugins declaring the other
    hooks it implements) add through ``hookshop_addhooks``."""
    import pluggy

    pm = pluggy.PluginManager("hookshop")
    pm.add_hookspecs(hookspecs)
    for source in (plugin, *owners):
        add = getattr(source, "hookshop_addhooks", None)
        if add is not None and hasattr(add, "hookshop_impl"):
            add(pluginmanager=pm)
    implemented = []
    # isroutine, not callable: a module that imports flask's current_app or request would
    # otherwise have those proxies evaluated outside an app context (RuntimeError)
    for name, func in inspect.getmembers(plugin, inspect.isroutine):
        if not hasattr(func, "hookshop_impl"):
            continue
        caller = getattr(pm.hook, name, None)
        if caller is None or caller.spec is None:
            raise ConformanceError(f"{name} is not a hookshop hook (see docs/plugins.md for the list)")
        allowed = set(caller.spec.argnames) | set(caller.spec.kwargnames)
        wanted = set(inspect.signature(func).parameters) - {"self"}
        extra = wanted - allowed
        if extra:
            raise ConformanceError(f"{name} asks for {sorted(extra)}; the hook provides {sorted(allowed)}")
        implemented.append(name)
    return sorted(implemented)


def check_carrier(carrier, order) -> None:
    """Rates and a shipment for ``order`` (call inside an app context)."""
    from engine.contracts import Carrier, problems
    from engine.domain.money import is_currency
    from engine.services.shipping import Rate, ShipmentInfo

    wrong = problems(carrier, Carrier)
    if wrong:
        raise ConformanceError(f"the carrier does not satisfy engine.contracts.Carrier: {'; '.join(wrong)}")
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
    from engine.contracts import PaymentProvider, problems
    from engine.services.payments import PaymentOutcome, RefundOutcome

    wrong = problems(provider, PaymentProvider)
    if wrong:
        raise ConformanceError(f"the provider does not satisfy engine.contracts.PaymentProvider: {'; '.join(wrong)}")
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


def check_migrations(app) -> None:
    """The models of the core and of the loaded plugins match what their migrations built (call it on an
    app whose database ``init_schema`` made, e.g. ``hookshop_app``)."""
    from engine import schema

    problems = schema.differences(app)
    if problems:
        raise ConformanceError("the models and the migrations differ; write a revision with "
                               "`hookshop db revision --branch <plugin> -m ...`:\n  " + "\n  ".join(problems))
