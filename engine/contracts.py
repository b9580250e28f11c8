"""The typed contracts of the four contract hooks that register objects: payment providers, carriers,
sales channel formats and journal exporters (issue #15).

Each is a ``typing.Protocol`` listing every member the engine (or the bundled plugin that drives it)
uses, with the values it exchanges as dataclasses. A plugin's class may subclass the Protocol to
declare conformance (mypy then checks it), but it does not have to: at start-up
``engine.plugins.Registry.refresh`` checks every registered object against its Protocol (members
present, callable, callable with the arguments the engine passes, ``inspect.signature``) and a
mismatch stops start-up with ``PluginError`` naming the plugin, the object, the Protocol and the
member (``check`` below).

Optional members (a provider's ``handle_webhook``, a carrier's ``label``...) are not in the Protocol
classes (a Protocol member is required); they are listed in ``OPTIONAL`` and checked when present.

The engine has only ever read these values as attributes (``outcome.status``, ``rate.price``), so no
plugin can return a dict today: the dataclasses are the only accepted form. The one dict of the
contracts is a channel's ``parse`` result, which *is* ``orders.place_order`` data: it is typed as the
``ChannelOrder`` TypedDict (a dict, so every format written so far still conforms).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, Protocol, TypedDict, runtime_checkable

from engine.errors import PluginError

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class PaymentOutcome:
    """What a provider says about a payment (``pay``, or its webhook through ``payments.apply_payment``).

    ``status``: ``paid`` (money captured), ``authorized`` (held, to capture later), ``pending``
    (waiting for the customer or a webhook), ``failed`` (a decline; ``message`` goes on the timeline).
    ``reference`` is the provider's id of the payment: outcomes are matched on (provider, reference),
    so applying one twice changes nothing. ``amount`` and ``fee`` are minor units.
    """

    status: str  # paid, authorized, pending, failed
    amount: int
    reference: str
    message: str = ""
    fee: int | None = None
    client_secret: str | None = None
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RefundOutcome:
    """What a provider says about a refund: ``status`` ``succeeded``, ``pending`` or ``failed`` (a
    ``refund_failed`` note, nothing refunded). Recorded once per ``reference``."""

    amount: int
    reference: str
    status: str = "succeeded"  # succeeded, pending, failed
    message: str = ""


@dataclass(frozen=True)
class Rate:
    """One shipping offer: ``price`` in minor units of ``currency``; ``estimated_delivery`` or None."""

    carrier: str
    service: str
    price: int
    currency: str
    estimated_delivery: date | None


@dataclass(frozen=True)
class ShipmentInfo:
    """A shipment the carrier created: its tracking number, ETA, tracking page, the label PDF when made
    at once (else the carrier's ``label(shipment)`` makes it on demand), its price (minor units) and
    data the carrier wants kept on the shipment row (``shipment.data``)."""

    tracking_number: str
    estimated_delivery: date | None = None
    tracking_url: str | None = None
    label_pdf: bytes | None = None
    price: int = 0
    data: dict = field(default_factory=dict)


class ChannelOrder(TypedDict, total=False):
    """A sales channel's ``parse(request)`` result: ``orders.place_order`` data plus routing keys.

    ``external_id``, ``customer`` (with ``shipping_address``) and ``lines`` (``sku`` or ``keys``,
    ``quantity``, ``unit_price``, ``path``) make an order; ``ignore`` (a reason) acknowledges the
    delivery without creating anything; ``action`` (``create``, ``update``, ``cancel``) and ``topic``
    route follow-ups; ``paths`` name the payload's own fields for error messages.
    """

    external_id: str
    customer: dict
    lines: list[dict]
    currency: str
    shipping_total: int
    discount_total: int
    tax_total: int
    note: str
    payment_status: str
    payment_reference: str
    billing_address: dict
    topic: str | None
    action: str
    ignore: str
    paths: dict


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class PaymentProvider(Protocol):
    """A payment provider (``register_payment_providers``), kept by ``name``: an order's
    ``payment_provider`` and ``<name>`` in ``POST /api/v1/payments/<name>/webhook``.

    Every method is called **outside any database transaction** and with no lock held: never write
    the order, return the outcome. Raising ``DomainError`` answers that error; any other exception is
    a 502 ``provider_unavailable`` and changes nothing but a note on the timeline.
    """

    name: str

    def pay(self, order: Any, payment_method: str | None = None,
            data: Mapping[str, Any] | None = None) -> PaymentOutcome:
        """Start, record or confirm payment of ``data["amount"]`` (what is due, or a part payment) with
        ``data["reference"]`` (what staff typed, or None). Idempotent per order: a retried call must not
        charge twice (give the same ``reference``)."""
        ...

    def refund(self, payment: Any, amount: int) -> RefundOutcome:
        """Refund ``amount`` minor units of ``payment``. The engine never asks for more than the capture
        minus what is refunded or pending; a provider never refunds more than it is asked. The
        ``reference`` must be unique per refund (it deduplicates)."""
        ...

    def void(self, payment: Any) -> None:
        """Cancel an authorised or pending payment (at cancellation). Voiding twice must be harmless;
        raise when the provider refuses (the cancellation then fails with 502 and can be retried)."""
        ...


@runtime_checkable
class Carrier(Protocol):
    """A carrier (``register_carriers``), kept by ``name``; ``services`` are the ``service`` values of
    ``POST /orders/{id}/ship``."""

    name: str
    services: list[str]

    def rates(self, order: Any) -> list[Rate]:
        """Offers for ``order`` (one per service that can carry it). Raising leaves this carrier out of
        ``GET /orders/{id}/rates``; the other carriers still answer."""
        ...

    def create_shipment(self, order: Any, service: str) -> ShipmentInfo:
        """Create the shipment at the carrier. Called outside any transaction with the order claimed for
        ``ship``; raising is a 502 ``provider_unavailable`` and the order stays ``packed``."""
        ...


@runtime_checkable
class SalesChannel(Protocol):
    """A sales channel format (``register_channels``), kept by ``name``: a channel's ``format``.

    ``POST /api/v1/channels/{name}/orders`` calls ``verify``, then ``delivery_id``, then ``parse``."""

    name: str

    def verify(self, request: Any, secrets: Iterable[str]) -> str | None:
        """None when one of ``secrets`` signed the raw body (``request.get_data()``), else the reason
        (answered 401). Never parse the body before this says None."""
        ...

    def delivery_id(self, request: Any) -> str:
        """The sender's delivery or event id (deduplicated in the inbox: a redelivery with the same id gets
        the first answer). When the sender gives none, derive one from the raw body (the bundled formats
        hash it)."""
        ...

    def parse(self, request: Any) -> dict[str, Any]:
        """The order data, with the keys of ``ChannelOrder``; raise ``ValidationFailed`` with errors named after the
        payload's fields when it is malformed."""
        ...


@runtime_checkable
class Exporter(Protocol):
    """A journal exporter (``register_exporters``), kept by ``format``: ``hookshop accounting export
    --format <format>``."""

    format: str

    def export(self, since: date | None, until: date | None, fh: IO[str]) -> object:
        """Write the journal between ``since`` and ``until`` (inclusive; None = open) to the open text
        file ``fh``. An exporter whose ``export`` also takes ``progress`` (a callable given the number of
        postings written in each step) gets the command's progress bar. The return value is ignored."""
        ...


# --------------------------------------------------------------------------- the start-up check

# for each Protocol: the call the engine makes of each method, as (positional arguments, keywords)
CALLS: dict[type, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    PaymentProvider: {"pay": (("order",), ("payment_method", "data")), "refund": (("payment", "amount"), ()),
                      "void": (("payment",), ())},
    Carrier: {"rates": (("order",), ()), "create_shipment": (("order", "service"), ())},
    SalesChannel: {"verify": (("request", "secrets"), ()), "delivery_id": (("request",), ()),
                   "parse": (("request",), ())},
    Exporter: {"export": (("since", "until", "fh"), ())},
}
# members the engine uses when present (same form), checked only then
OPTIONAL: dict[type, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    PaymentProvider: {"handle_webhook": (("request",), ())},
    Carrier: {"label": (("shipment",), ()), "cancel_shipment": (("shipment",), ()),
              "handle_tracking": (("request",), ())},
    SalesChannel: {"is_ping": (("request",), ()), "check_secret": (("secret",), ())},
    Exporter: {},
}
# the attribute each registry keys its objects by, and what the messages call each kind
KEYS: dict[type, str] = {PaymentProvider: "name", Carrier: "name", SalesChannel: "name", Exporter: "format"}
KINDS: dict[type, str] = {PaymentProvider: "payment provider", Carrier: "carrier", SalesChannel: "sales channel",
                          Exporter: "exporter"}


def members(protocol: type) -> list[str]:
    """Every member of ``protocol`` (attributes, then methods), optional ones included: the names
    docs/plugins.md must show."""
    attributes = [name for name in protocol.__annotations__ if not name.startswith("_")]
    return attributes + list(CALLS[protocol]) + list(OPTIONAL[protocol])


def _call_form(method: str, form: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    positional, keywords = form
    return f"{method}({', '.join([*positional, *(f'{k}=...' for k in keywords)])})"


def _stub(obj: object, method: str) -> bool:
    """True when ``obj``'s class subclasses a Protocol and inherited the Protocol's ``...`` body."""
    for protocol in CALLS:
        if method in CALLS[protocol] and getattr(type(obj), method, None) is getattr(protocol, method):
            return True
    return False


def _method_problem(obj: object, method: str, form: tuple[tuple[str, ...], tuple[str, ...]]) -> str | None:
    member = getattr(obj, method, None)
    if member is None or _stub(obj, method):
        return f"missing method {_call_form(method, form)}"
    if not callable(member):
        return f"{method} is a {type(member).__name__}, not a method {_call_form(method, form)}"
    try:
        signature = inspect.signature(member)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return None
    positional, keywords = form
    try:
        signature.bind(*positional, **{k: None for k in keywords})
    except TypeError as exc:
        return f"method {method}{signature} cannot be called as {_call_form(method, form)} ({exc})"
    return None


def problems(obj: object, protocol: type) -> list[str]:
    """What ``obj`` lacks to satisfy ``protocol`` (empty: it conforms)."""
    found = []
    for attribute, kind in protocol.__annotations__.items():
        value = getattr(obj, attribute, None)
        if value is None:
            found.append(f"missing attribute {attribute} ({kind})")
        elif attribute == KEYS[protocol] and (not isinstance(value, str) or not value):
            found.append(f"{attribute} must be a non-empty str, not {value!r}")
        elif attribute == "services" and (not isinstance(value, list | tuple)
                                          or not all(isinstance(s, str) for s in value)):
            found.append(f"services must be a list of str, not {value!r}")
    for method, form in CALLS[protocol].items():
        problem = _method_problem(obj, method, form)
        if problem:
            found.append(problem)
    for method, optional_form in OPTIONAL[protocol].items():
        if getattr(obj, method, None) is not None:
            problem = _method_problem(obj, method, optional_form)
            if problem:
                found.append(f"{problem} (optional, but wrong when present)")
    return found


def check(obj: object, protocol: type, plugin: str) -> None:
    """Raise ``ContractError`` (a ``PluginError``) when ``obj``, registered by ``plugin``, does not
    satisfy ``protocol``, naming the plugin, the object, the Protocol and every wrong member."""
    found = problems(obj, protocol)
    if found:
        key = getattr(obj, KEYS[protocol], None)
        what = f"{KINDS[protocol]} {key!r}" if isinstance(key, str) and key else f"{KINDS[protocol]} {obj!r}"
        raise ContractError(f"plugin {plugin!r}: {what} does not satisfy {protocol.__name__}: {'; '.join(found)}")


class ContractError(PluginError):
    """A registered object does not satisfy its Protocol (start-up fails)."""
