"""Everything a hookshop plugin may import from the core, and nothing else.

A plugin imports ``engine.plugin_api`` (plus its own package, the standard library and third-party
libraries); every other ``engine.*`` module is internal and may change without notice. The bundled
plugins keep this rule: ``tests/test_plugin_boundary.py`` walks their imports. docs/plugins.md ("The
public API for plugins") describes each group below.

The transaction rule: a plugin never commits or rolls back a transaction it did not begin. Its own
writes go in ``with transaction():`` (joining the caller's when there is one); before slow outside I/O
it calls ``end_read()`` and after a failure it caught, ``reset_session()``: both do nothing inside a
``transaction()`` block, which belongs to whoever opened it. Never ``db.session.commit()`` or
``db.session.rollback()``.
"""

from __future__ import annotations

from engine import hookimpl  # the pluggy marker of the project "hookshop": @hookimpl def order_paid(...)
from engine.admin.permissions import require as require_permission  # @require_permission("x.view") on a view
from engine.admin.plugin_screens import AdminScreen, protect  # admin_screens() items; the admin gate
from engine.api import Blueprint, idempotent, public, require_scope, requires_scope
from engine.api.schemas import CurrencyCode, Strict, boolean, integer, mapping, query_integer

# contracts: the typing.Protocol classes a registered provider, carrier, channel format or exporter satisfies
# (checked at start-up), and the value of a channel's parse
from engine.contracts import Carrier, ChannelOrder, Exporter, PaymentProvider, SalesChannel
from engine.db import (
    JSONType,
    Model,
    as_utc,
    before_outside_call,
    db,
    insert_if_absent,
    is_postgres,
    page_by_id,
    transaction,
    utcnow,
)
from engine.delivery import drain
from engine.domain.locales import lenient as lenient_locale
from engine.domain.locales import normalize as normalize_locale
from engine.domain.money import amount_text, currency_code, exponent, format_money, is_currency, percent_of
from engine.domain.privacy import (
    REDACTED,
    mask_card_numbers,
    mask_email,
    mask_url,
    redact_text,
    redact_values,
    redacted_traceback,
)
from engine.domain.transitions import is_open as order_is_open
from engine.errors import (
    Conflict,
    DomainError,
    NotFound,
    PaymentFailed,
    PluginError,
    ProviderUnavailable,
    ValidationFailed,
)
from engine.i18n import catalog_directory
from engine.jobs import enqueue
from engine.models import (
    Customer,
    InboxRecord,
    Location,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    PurchaseOrder,
    PurchaseOrderLine,
    Refund,
    ReorderRule,
    Reservation,
    Return,
    SerialUnit,
    Shipment,
    StaffUser,
    StockAlert,
    StockLevel,
    StockMovement,
    Supplier,
)
from engine.models.orders import ORDER_NUMBER_OFFSET

# outbound HTTP and signed webhooks (docs/plugins.md, "Outbound HTTP and signed webhooks")
from engine.outbound import (
    Answer,
    Client,
    OutboundError,
    SignatureRefused,
    TargetRefused,
    allowed_networks,
    check_address,
    embedded_ipv4,
    is_public,
    new_secret,
    sign_headers,
)
from engine.outbound import secret_key as webhook_secret_key
from engine.outbound import signature as webhook_signature
from engine.outbound import verify as verify_webhook

# settings: a plugin declares its settings once (docs/plugins.md, "Settings")
from engine.plugin_settings import (
    Choice,
    Email,
    Flag,
    Integer,
    Items,
    Mapping,
    Networks,
    Number,
    Percent,
    PluginSettings,
    Secret,
    Setting,
    SettingsError,
    Text,
    Url,
)
from engine.plugin_settings import Path as FilePath
from engine.plugins import registry

# the retry queue (docs/plugins.md, "The retry queue"): kinds declared through register_task_kinds
from engine.retry_queue import Decision, Outcome, Task, TaskKind, failure, get_task, success
from engine.retry_queue import discard as discard_tasks
from engine.retry_queue import enqueue as enqueue_task
from engine.retry_queue import requeue as requeue_tasks
from engine.retry_queue import run_due as run_due_tasks
from engine.retry_queue import run_held as run_held_tasks
from engine.schema import widen_integers
from engine.services.catalog import create_product
from engine.services.customers import update_customer
from engine.services.inbox import record_once
from engine.services.inbox import seen as inbox_seen
from engine.services.orders import (
    cancel_order,
    change_order_details,
    complete_order,
    confirm_order,
    deliver_order,
    find_channel_order,
    get_order,
    hold_order,
    release_order,
)
from engine.services.orders import note as note_order
from engine.services.payments import (
    PaymentOutcome,
    RefundOutcome,
    apply_payment,
    apply_refund,
    pay_order,
    refund_order,
)
from engine.services.placement import place_order
from engine.services.shipping import Rate, ShipmentInfo, rates_for, ship_order
from engine.services.stock import receive_stock
from engine.services.warehouse import pack_order, pick_order
from engine.testing import (
    DeliveringClient,
    check_carrier,
    check_migrations,
    check_payment_provider,
    check_plugin,
)

# --------------------------------------------------------------------------- the transaction rule

def end_read() -> None:
    """End the open read (a plain ``SELECT`` leaves one open) before slow outside I/O — an HTTP call, an
    SMTP server — so no snapshot or lock is held while it runs. Inside a ``transaction()`` block it does
    nothing: that transaction belongs to whoever opened it."""
    before_outside_call()


def reset_session() -> None:
    """After an error your code caught outside any ``transaction()`` block (a failed read, a service call
    that raised: its own transaction is already rolled back), make the session usable again. Inside a
    ``transaction()`` block it does nothing: let the error reach the block's owner, who rolls back."""
    session = db.session()
    if session.info.get("tx_depth", 0) == 0 and session.in_transaction():
        session.rollback()


def stage_hookspecs() -> dict:
    """The core's stage hooks, in the stages' order: ``{name: spec function}`` (the hookspecs with an
    ``event`` argument). A plugin that handles every stage alike (forwarding, auditing) builds its
    hookimpls from these, with the spec's own argument names."""
    import inspect

    from engine import hookspecs

    return {name: spec for name, spec in vars(hookspecs).items()
            if getattr(spec, "hookshop_spec", None) is not None and "event" in inspect.signature(spec).parameters}


def known_hook(name: str) -> bool:
    """True when the core declares a hook of that name (a hook of a newer core is not known yet)."""
    from engine import hookspecs

    return hasattr(getattr(hookspecs, name, None), "hookshop_spec")


# --------------------------------------------------------------------------- timeline and movement kinds

# ``OrderEvent.kind`` of the entries the stages write on an order's timeline (the stage hook's name);
# a note (``note_order``) uses the kind its caller gives.
TIMELINE_ORDER_PLACED = "order_placed"
TIMELINE_ORDER_PAID = "order_paid"
TIMELINE_ORDER_ON_HOLD = "order_on_hold"
TIMELINE_ORDER_RELEASED = "order_released"
TIMELINE_ORDER_PICKED = "order_picked"
TIMELINE_ORDER_CONFIRMED = "order_confirmed"
TIMELINE_ORDER_PACKED = "order_packed"
TIMELINE_ORDER_SHIPPED = "order_shipped"
TIMELINE_ORDER_DELIVERED = "order_delivered"
TIMELINE_ORDER_COMPLETED = "order_completed"
TIMELINE_ORDER_CANCELLED = "order_cancelled"
TIMELINE_REFUND_ISSUED = "refund_issued"
# prefix of a carrier's tracking notes: ``TIMELINE_TRACKING_PREFIX + status`` ("tracking_in_transit")
TIMELINE_TRACKING_PREFIX = "tracking_"

# ``StockMovement.kind``: what moved the stock
MOVEMENT_RECEIPT = "receipt"        # goods received (POST /stock/receipts, a purchase order)
MOVEMENT_SHIPMENT = "shipment"      # units that left with an order (negative quantity)
MOVEMENT_RETURN = "return"          # returned units put back
MOVEMENT_ADJUSTMENT = "adjustment"  # a counted or corrected quantity (reason and staff recorded)


__all__ = [
    # hooks
    "hookimpl", "known_hook", "stage_hookspecs", "registry",
    # database: the session, the transaction rule, helpers for a plugin's own tables and queries
    "db", "Model", "transaction", "end_read", "reset_session", "is_postgres", "insert_if_absent", "page_by_id",
    "JSONType", "utcnow", "as_utc", "widen_integers", "enqueue",
    # models a plugin may read (change them through the services)
    "Customer", "InboxRecord", "Location", "Order", "OrderEvent", "OrderLine", "Payment", "Product",
    "PurchaseOrder", "PurchaseOrderLine", "Refund", "ReorderRule", "Reservation", "Return", "SerialUnit",
    "Shipment", "StaffUser", "StockAlert", "StockLevel", "StockMovement", "Supplier", "ORDER_NUMBER_OFFSET",
    # services: each call is one transaction (joining the caller's)
    "place_order", "get_order", "find_channel_order", "change_order_details", "cancel_order", "hold_order",
    "release_order", "confirm_order", "deliver_order", "complete_order", "note_order", "order_is_open",
    "pay_order", "apply_payment", "apply_refund", "refund_order", "PaymentOutcome", "RefundOutcome",
    "rates_for", "ship_order", "Rate", "ShipmentInfo", "pick_order", "pack_order", "create_product",
    "receive_stock", "record_once", "inbox_seen", "update_customer",
    # the retry queue: a kind's rules and handler outcomes, enqueue in the caller's transaction
    "TaskKind", "Task", "Outcome", "Decision", "success", "failure", "enqueue_task", "run_held_tasks", "run_due_tasks",
    "requeue_tasks", "discard_tasks", "get_task",
    # timeline and stock movement kinds
    "TIMELINE_ORDER_PLACED", "TIMELINE_ORDER_PAID", "TIMELINE_ORDER_ON_HOLD", "TIMELINE_ORDER_RELEASED",
    "TIMELINE_ORDER_PICKED", "TIMELINE_ORDER_CONFIRMED", "TIMELINE_ORDER_PACKED", "TIMELINE_ORDER_SHIPPED",
    "TIMELINE_ORDER_DELIVERED", "TIMELINE_ORDER_COMPLETED", "TIMELINE_ORDER_CANCELLED", "TIMELINE_REFUND_ISSUED",
    "TIMELINE_TRACKING_PREFIX", "MOVEMENT_RECEIPT", "MOVEMENT_SHIPMENT", "MOVEMENT_RETURN", "MOVEMENT_ADJUSTMENT",
    # REST API: blueprints, signed routes, scopes, idempotency, schema fields
    "Blueprint", "public", "requires_scope", "require_scope", "idempotent", "Strict", "CurrencyCode", "boolean",
    "integer", "mapping", "query_integer",
    # admin screens
    "AdminScreen", "protect", "require_permission",
    # errors
    "DomainError", "ValidationFailed", "NotFound", "Conflict", "PaymentFailed", "ProviderUnavailable",
    "PluginError",
    # money, locales, translations
    "exponent", "currency_code", "is_currency", "amount_text", "format_money", "percent_of", "normalize_locale",
    "lenient_locale", "catalog_directory",
    # privacy: what may be logged
    "REDACTED", "mask_email", "mask_url", "mask_card_numbers", "redact_text", "redact_values",
    "redacted_traceback",
    # contracts (typing.Protocol, checked at registration)
    "PaymentProvider", "Carrier", "SalesChannel", "Exporter", "ChannelOrder",
    # settings: declared once, read from HOOKSHOP_<PREFIX>_* and the TOML file
    "PluginSettings", "Setting", "SettingsError", "Text", "Secret", "Choice", "Integer", "Number", "Percent",
    "Flag", "Url", "FilePath", "Email", "Items", "Networks", "Mapping",
    # outbound HTTP (SSRF-guarded, retries never sleeping in a request) and Standard Webhooks signing
    "Client", "Answer", "OutboundError", "TargetRefused", "allowed_networks", "check_address", "embedded_ipv4",
    "is_public", "SignatureRefused", "sign_headers", "verify_webhook", "webhook_signature", "webhook_secret_key",
    "new_secret",
    # test kit (for a plugin's tests)
    "check_plugin", "check_carrier", "check_payment_provider", "check_migrations", "DeliveringClient", "drain",
]
