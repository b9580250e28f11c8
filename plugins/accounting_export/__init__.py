"""accounting_export: the double-entry journal, receipts, reports, exports and cloud sync.

Stage hooks post balanced entries to the plugin's own journal (idempotent per event and order; see
``journal``); ``order_confirmed`` also numbers the receipt. Exports stream the journal as CSV,
beancount, ledger or Xero CSV (``hookshop accounting export``, ``GET /api/v1/accounting/export``);
``periodic_tasks`` posts stock receipts and pushes entries to the sync endpoint. Settings:
``HOOKSHOP_ACCOUNTING_*`` (README).
"""

from __future__ import annotations

import logging
from datetime import datetime

from engine.plugin_api import hookimpl, transaction

from . import journal, models, receipts, stock_postings  # noqa: F401  (models: the tables exist once the plugin is imported)
from .settings import EXTENSION, SETTINGS, SettingsError, load

log = logging.getLogger("hookshop.accounting_export")
__all__ = ["SETTINGS"]  # the settings declaration (settings.py): `hookshop plugins` and docs list it


@hookimpl
def plugin_setup(app):
    try:
        settings = load(app.config)
    except SettingsError as exc:
        return str(exc)
    app.extensions[EXTENSION] = settings
    if settings.sync_url and not settings.sync_secret:
        # the journal still works: only the sync waits for its secret
        log.warning("accounting_export: HOOKSHOP_ACCOUNTING_SYNC_SECRET is not set; entries are not synced")
    return None


# ----------------------------------------------------------------- stage hooks (after commit, at least once)


@hookimpl
def order_paid(order, event):
    with transaction():
        journal.lock_books(order)
        journal.book_payments(order, journal.event_date(event))


@hookimpl
def order_confirmed(order, event):
    with transaction():
        books = journal.lock_books(order)
        journal.book_sale(order, event, books)
        receipts.issue(order, books, datetime.fromisoformat(event["created_at"]))


@hookimpl
def order_shipped(order, shipment, event):
    with transaction():
        stock_postings.book_shipment(order, shipment, event)


@hookimpl
def refund_issued(order, payment, amount, event):
    with transaction():
        journal.book_refund(order, payment, amount, event)


@hookimpl
def return_received(order, order_return, event):
    with transaction():
        stock_postings.book_return(order, order_return, event)


@hookimpl
def order_cancelled(order, event):
    with transaction():
        journal.book_cancellation(order, event)


# ----------------------------------------------------------------- contract hooks


@hookimpl
def periodic_tasks(now):
    with transaction():
        stock_postings.book_stock_movements()
    with transaction():
        journal.book_captured_payments(now)
    # the sync itself runs on the core's retry queue, right after this (register_task_kinds)


@hookimpl
def register_task_kinds():
    from . import sync

    return [sync.task_kind()]


@hookimpl
def order_documents(order, kind):
    """The receipt PDF for the confirmation message, once the receipt is numbered."""
    if kind != "order_confirmed":
        return []
    receipt = receipts.receipt_of_order(order.id)
    if receipt is None:
        return []
    # the facts the e-mail quotes: the receipt number and the VAT per rate (net, tax, gross in minor units)
    facts = {"number": receipt.number, "tax": [dict(row) for row in receipt.data.get("tax", [])]}
    return [(f"receipt-{receipt.number}.pdf", "application/pdf", receipts.receipt_pdf(receipt), facts)]


@hookimpl
def register_exporters():
    from .exporters import EXPORTERS

    return list(EXPORTERS.values())


@hookimpl
def register_blueprints():
    from .admin import admin
    from .api import blp

    return [blp, admin]


@hookimpl
def admin_screens():
    from .admin import screens

    return screens()


@hookimpl
def admin_order_panels(order):
    from .admin import order_panels

    return order_panels(order)


@hookimpl
def register_commands():
    from .cli import accounting

    return [accounting]
