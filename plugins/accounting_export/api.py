"""``/api/v1/accounting/...``: the chart, entries, receipts (and their PDF), reports, sync status, exports.

A flask-smorest blueprint: it is in the OpenAPI document, and the engine's API-key check applies
(every route here is a GET: the ``read`` scope).
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response, stream_with_context
from marshmallow import RAISE, fields, validate, validates_schema

from engine.plugin_api import Blueprint, NotFound, as_utc, db, query_integer

from . import exporters, receipts, reports, sync
from .models import JournalEntry, Posting, Receipt, SyncState
from .settings import DEFAULT_ACCOUNTS, current, rate_key

blp = Blueprint("accounting", __name__, url_prefix="/api/v1/accounting",
                description="accounting_export: the double-entry journal, receipts, reports and exports")


class Strict(ma.Schema):
    class Meta:
        unknown = RAISE


class AccountingRangeQuery(Strict):
    since = fields.Date(metadata={"description": "first booking date (inclusive), YYYY-MM-DD"})
    until = fields.Date(metadata={"description": "last booking date (inclusive), YYYY-MM-DD"})

    @validates_schema
    def _order(self, data, **_):
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ma.ValidationError("must not be before since", "until")


class AccountingYearQuery(AccountingRangeQuery):
    year = query_integer(1970, 9999, metadata={"description": "a calendar year (instead of since/until)"})


class AccountingEntryQuery(AccountingRangeQuery):
    order = query_integer(metadata={"description": "an order id"})
    kind = fields.String(validate=validate.OneOf(["sale", "payment", "fee", "refund", "cancellation", "shipment",
                                                  "return", "stock_receipt", "stock_adjustment"]))
    limit = query_integer(1, 500, load_default=50)
    cursor = query_integer(metadata={"description": "the previous page's next_cursor"})


class AccountingReceiptQuery(Strict):
    order = query_integer()
    year = query_integer(1970, 9999)
    limit = query_integer(1, 500, load_default=50)
    cursor = query_integer()


class AccountingExportQuery(AccountingRangeQuery):
    format = fields.String(required=True, validate=validate.OneOf(sorted(exporters.EXPORTERS)))


# ----------------------------------------------------------------- documented answers


class AccountingAccountOut(Strict):
    role = fields.String(required=True)
    account = fields.String(required=True, metadata={"description": "may hold {provider} or {rate}"})


class AccountingRateOut(Strict):
    pattern = fields.String(required=True, metadata={"description": "a sku or a glob (BOOK-*)"})
    rate = fields.String(required=True)


class AccountingTaxSettingsOut(Strict):
    default_rate = fields.String(required=True)
    shipping_rate = fields.String(required=True)
    overrides = fields.List(fields.Nested(AccountingRateOut), required=True)


class AccountingChartOut(Strict):
    accounts = fields.List(fields.Nested(AccountingAccountOut), required=True)
    tax = fields.Nested(AccountingTaxSettingsOut, required=True)


class AccountingPostingOut(Strict):
    line = fields.Integer(required=True)
    account = fields.String(required=True)
    role = fields.String(required=True)
    amount = fields.Integer(required=True, metadata={"description": "minor units: debit > 0, credit < 0"})
    currency = fields.String(required=True)
    tax_rate = fields.String(allow_none=True, required=True)
    sku = fields.String(allow_none=True, required=True)
    quantity = fields.Integer(allow_none=True, required=True)
    memo = fields.String(allow_none=True, required=True)


class AccountingSyncOut(Strict):
    status = fields.String(required=True, validate=validate.OneOf(sync.STATUSES))
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.String(allow_none=True, required=True)
    synced_at = fields.String(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)


class AccountingEntryOut(Strict):
    id = fields.Integer(required=True)
    uid = fields.String(required=True, metadata={"description": "the idempotency key sent to the sync endpoint"})
    date = fields.String(required=True)
    kind = fields.String(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    order_number = fields.String(allow_none=True, required=True)
    channel = fields.String(allow_none=True, required=True)
    payee = fields.String(allow_none=True, required=True)
    description = fields.String(required=True)
    event_id = fields.Integer(allow_none=True, required=True)
    source_key = fields.String(required=True)
    created_at = fields.String(required=True)
    postings = fields.List(fields.Nested(AccountingPostingOut), required=True)
    sync = fields.Nested(AccountingSyncOut, allow_none=True, required=True)


class AccountingEntryPage(Strict):
    items = fields.List(fields.Nested(AccountingEntryOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AccountingReceiptOut(Strict):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "<prefix><year>-<6-digit number>, gap-free"})
    year = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    issued_at = fields.String(required=True)
    currency = fields.String(required=True)
    total = fields.Integer(required=True)
    pdf_url = fields.String(required=True)
    data = fields.Dict(required=True, metadata={"description": "seller, order, customer, lines, tax per rate, "
                                                              "totals, payment"})


class AccountingReceiptPage(Strict):
    items = fields.List(fields.Nested(AccountingReceiptOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AccountingReportOut(ma.Schema):
    """A report (see the plugin's README for each report's fields)."""

    class Meta:
        unknown = ma.INCLUDE


class AccountingSyncStatusOut(Strict):
    enabled = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, required=True)
    url = fields.String(allow_none=True, required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    next_attempt_at = fields.String(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)


# ----------------------------------------------------------------- serialisers


def _iso(value):
    return as_utc(value).isoformat() if value is not None else None


def entry_out(entry: JournalEntry, postings: list[Posting], state: SyncState | None) -> dict:
    return {
        "id": entry.id, "uid": entry.uid, "date": entry.booking_date.isoformat(), "kind": entry.kind,
        "order_id": entry.order_id, "order_number": entry.order_number, "channel": entry.channel,
        "payee": entry.payee, "description": entry.description, "event_id": entry.event_id,
        "source_key": entry.source_key, "created_at": _iso(entry.created_at),
        "postings": [{"line": p.line_no, "account": p.account, "role": p.role, "amount": p.amount,
                      "currency": p.currency, "tax_rate": p.tax_rate, "sku": p.sku, "quantity": p.quantity,
                      "memo": p.memo} for p in postings],
        "sync": None if state is None else {
            "status": state.status, "attempts": state.attempts, "next_attempt_at": _iso(state.next_attempt_at),
            "synced_at": _iso(state.synced_at), "last_error": state.last_error},
    }


def entries_out(entries: list[JournalEntry]) -> list[dict]:
    ids = [e.id for e in entries]
    postings: dict[int, list] = {}
    states = {}
    if ids:
        for p in db.session.execute(db.select(Posting).where(Posting.entry_id.in_(ids))
                                    .order_by(Posting.entry_id, Posting.line_no)).scalars():
            postings.setdefault(p.entry_id, []).append(p)
        states = {s.entry_id: s for s in db.session.execute(db.select(SyncState).where(SyncState.entry_id.in_(ids)))
                  .scalars()}
    return [entry_out(e, postings.get(e.id, []), states.get(e.id)) for e in entries]


# ----------------------------------------------------------------- routes


@blp.route("/accounts")
@blp.alt_response(200, schema=AccountingChartOut, success=True, description="the chart of accounts and the VAT rates")
def accounts():
    """The chart of accounts (role -> account) and the VAT rates"""
    settings = current()
    roles = list(DEFAULT_ACCOUNTS) + sorted(k for k in settings.accounts if k not in DEFAULT_ACCOUNTS)
    return {"accounts": [{"role": role, "account": settings.accounts[role]} for role in roles],
            "tax": {"default_rate": rate_key(settings.default_rate), "shipping_rate": rate_key(settings.shipping_rate),
                    "overrides": [{"pattern": p, "rate": rate_key(r)} for p, r in settings.rate_overrides]}}


@blp.route("/entries")
@blp.arguments(AccountingEntryQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=AccountingEntryPage, success=True, description="journal entries, newest first, cursor paginated")
def list_entries(query):
    """Journal entries with their postings and sync status (filter by dates, order, kind)"""
    stmt = db.select(JournalEntry).order_by(JournalEntry.id.desc())
    if query.get("since"):
        stmt = stmt.where(JournalEntry.booking_date >= query["since"])
    if query.get("until"):
        stmt = stmt.where(JournalEntry.booking_date <= query["until"])
    if query.get("order"):
        stmt = stmt.where(JournalEntry.order_id == query["order"])
    if query.get("kind"):
        stmt = stmt.where(JournalEntry.kind == query["kind"])
    if query.get("cursor"):
        stmt = stmt.where(JournalEntry.id < query["cursor"])
    rows = list(db.session.execute(stmt.limit(query["limit"] + 1)).scalars())
    more = len(rows) > query["limit"]
    rows = rows[:query["limit"]]
    return {"items": entries_out(rows), "next_cursor": str(rows[-1].id) if more else None}


@blp.route("/entries/<int:entry_id>")
@blp.alt_response(200, schema=AccountingEntryOut, success=True, description="the entry")
@blp.alt_response(404, schema="Error", description="no such entry")
def get_entry(entry_id):
    """One journal entry"""
    entry = db.session.get(JournalEntry, entry_id)
    if entry is None:
        raise NotFound(f"no journal entry with id {entry_id}")
    return entries_out([entry])[0]


@blp.route("/receipts")
@blp.arguments(AccountingReceiptQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=AccountingReceiptPage, success=True, description="receipts, newest first, cursor paginated")
def list_receipts(query):
    """Receipts (filter by order or year)"""
    stmt = db.select(Receipt).order_by(Receipt.id.desc())
    if query.get("order"):
        stmt = stmt.where(Receipt.order_id == query["order"])
    if query.get("year"):
        stmt = stmt.where(Receipt.year == query["year"])
    if query.get("cursor"):
        stmt = stmt.where(Receipt.id < query["cursor"])
    rows = list(db.session.execute(stmt.limit(query["limit"] + 1)).scalars())
    more = len(rows) > query["limit"]
    rows = rows[:query["limit"]]
    return {"items": [receipts.receipt_out(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}


@blp.route("/receipts/<int:receipt_id>")
@blp.alt_response(200, schema=AccountingReceiptOut, success=True, description="the receipt")
@blp.alt_response(404, schema="Error", description="no such receipt")
def get_receipt(receipt_id):
    """One receipt and its data (for the customer's e-mail)"""
    return receipts.receipt_out(receipts.get_receipt(receipt_id))


@blp.route("/receipts/<int:receipt_id>/receipt.pdf")
@blp.alt_response(200, schema=None, success=True, description="the receipt (application/pdf)")
@blp.alt_response(404, schema="Error", description="no such receipt")
def receipt_pdf(receipt_id):
    """The receipt as a PDF"""
    receipt = receipts.get_receipt(receipt_id)
    return Response(receipts.receipt_pdf(receipt), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="receipt-{receipt.number}.pdf"'})


@blp.route("/orders/<int:order_id>/receipt")
@blp.alt_response(200, schema=AccountingReceiptOut, success=True, description="the order's receipt")
@blp.alt_response(404, schema="Error", description="the order has no receipt (not confirmed yet, or unknown)")
def order_receipt(order_id):
    """The receipt of an order (issued when it is confirmed)"""
    receipt = receipts.receipt_of_order(order_id)
    if receipt is None:
        raise NotFound(f"order {order_id} has no receipt: receipts are issued at confirmation")
    return receipts.receipt_out(receipt)


@blp.route("/reports/trial-balance")
@blp.arguments(AccountingRangeQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=AccountingReportOut, success=True,
                  description="accounts (debit, credit, balance per currency), totals, balanced")
def trial_balance(query):
    """Trial balance (every currency's balances sum to zero)"""
    return reports.trial_balance(query.get("since"), query.get("until"))


@blp.route("/reports/sales")
@blp.arguments(AccountingYearQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=AccountingReportOut, success=True, description="rows per channel, month and currency")
def sales_report(query):
    """Sales by channel and month"""
    return reports.sales_by_channel(query.get("year"), query.get("since"), query.get("until"))


@blp.route("/reports/tax")
@blp.arguments(AccountingYearQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=AccountingReportOut, success=True, description="net, tax and gross per currency and VAT rate")
def tax_report(query):
    """Tax summary per VAT rate (year-end)"""
    return reports.tax_summary(query.get("year"), query.get("since"), query.get("until"))


@blp.route("/reports/inventory")
@blp.alt_response(200, schema=AccountingReportOut, success=True,
                  description="stock at unit cost against the inventory account, per product")
def inventory_report():
    """Inventory valuation against the inventory account (reconciliation)"""
    return reports.inventory_valuation()


@blp.route("/sync")
@blp.alt_response(200, schema=AccountingSyncStatusOut, success=True, description="counts per sync status")
def sync_status():
    """Cloud sync status (per entry: see the entries' sync)"""
    return sync.status()


@blp.route("/export")
@blp.arguments(AccountingExportQuery, location="query", unknown=RAISE)
@blp.alt_response(200, schema=None, success=True, description="the journal in the format asked (streamed)")
def export(query):
    """Export the journal (csv, beancount, ledger, xero), streamed"""
    exporter = exporters.EXPORTERS[query["format"]]
    name = f"journal.{exporter.extension}"
    chunks = exporter.chunks(query.get("since"), query.get("until"))
    return Response(stream_with_context(exporters.buffered(chunks)), content_type=exporter.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
