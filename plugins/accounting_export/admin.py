"""The admin's accounting screen (``/admin/accounting``, permission ``accounting.view``): the journal entries
of a date range with their postings, the exports of that range (the same exporters as
``GET /api/v1/accounting/export`` and ``hookshop accounting export``) and the receipts with their PDF; and
the order page's section "Journal entries" (hook ``admin_order_panels``). Reading only."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, flash, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine.plugin_api import AdminScreen, db, protect, require_permission

from . import exporters, receipts
from .api import entries_out
from .models import JournalEntry, Receipt

admin = protect(Blueprint("accounting_export_admin", __name__, url_prefix="/admin/accounting",
                          template_folder="templates"))

KIND_LABELS = {"sale": _l("Sale"), "payment": _l("Payment"), "fee": _l("Fee"), "refund": _l("Refund"),
               "cancellation": _l("Cancellation"), "shipment": _l("Shipment"), "return": _l("Return"),
               "stock_receipt": _l("Stock receipt"), "stock_adjustment": _l("Stock adjustment")}
SYNC_LABELS = {"pending": _l("Waiting"), "synced": _l("Synced"), "failed": _l("Failed, retried later"),
               "rejected": _l("Rejected")}
PAGE = 50


def screens() -> list[AdminScreen]:
    return [AdminScreen(_l("Accounting"), "accounting_export_admin.accounting", "accounting.view", 70)]


def _range() -> tuple[date | None, date | None, str | None]:
    """``since`` and ``until`` of the query string (YYYY-MM-DD, both optional), or the error to show."""
    found = []
    for name in ("since", "until"):
        value = (request.args.get(name) or "").strip()
        try:
            found.append(date.fromisoformat(value) if value else None)
        except ValueError:
            return None, None, _("%(value)s is not a date (YYYY-MM-DD).", value=value[:20])
    since, until = found
    if since and until and until < since:
        return None, None, _("The end of the range is before its start.")
    return since, until, None


@admin.route("")
@require_permission("accounting.view")
def accounting():
    since, until, error = _range()
    if error:
        flash(error, "error")
    return _journal(since, until), 422 if error else 200


def _journal(since: date | None, until: date | None) -> str:
    cursor = request.args.get("cursor", "")
    stmt = select(JournalEntry).order_by(JournalEntry.id.desc())
    if since:
        stmt = stmt.where(JournalEntry.booking_date >= since)
    if until:
        stmt = stmt.where(JournalEntry.booking_date <= until)
    if cursor.isdigit() and len(cursor) <= 18:
        stmt = stmt.where(JournalEntry.id < int(cursor))
    rows = list(db.session.execute(stmt.limit(PAGE + 1)).scalars())
    next_cursor = rows[PAGE - 1].id if len(rows) > PAGE else None
    receipt_rows = list(db.session.execute(select(Receipt).order_by(Receipt.id.desc()).limit(20)).scalars())
    return render_template("admin/accounting_export/accounting.html", entries=entries_out(rows[:PAGE]),
                           next_cursor=next_cursor, since=since, until=until, receipts=receipt_rows,
                           formats=sorted(exporters.EXPORTERS), kinds=KIND_LABELS, sync_labels=SYNC_LABELS)


@admin.route("/export")
@require_permission("accounting.view")
def export():
    """The journal of the range in one format, streamed (as the API's export)."""
    since, until, error = _range()
    exporter = exporters.EXPORTERS.get(request.args.get("format", ""))
    if error or exporter is None:
        flash(error or _("Choose an export format."), "error")
        return _journal(since, until), 422
    chunks = exporter.chunks(since, until)
    name = f"journal-{since or 'start'}-{until or 'today'}.{exporter.extension}"
    return Response(stream_with_context(exporters.buffered(chunks)), content_type=exporter.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@admin.route("/receipts/<int:receipt_id>/receipt.pdf")
@require_permission("accounting.view")
def receipt_pdf(receipt_id: int):
    receipt = db.session.get(Receipt, receipt_id)
    if receipt is None:
        abort(404, _("No receipt with the id %(id)s.", id=receipt_id))
    return Response(receipts.receipt_pdf(receipt), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="receipt-{receipt.number}.pdf"'})


def order_panels(order) -> list[dict]:
    rows = list(db.session.execute(select(JournalEntry).where(JournalEntry.order_id == order.id)
                                   .order_by(JournalEntry.booking_date, JournalEntry.id)).scalars())
    html = render_template("admin/accounting_export/_order_panel.html", entries=entries_out(rows),
                           receipt=receipts.receipt_of_order(order.id), kinds=KIND_LABELS)
    return [{"title": _l("Journal entries"), "html": html, "permission": "accounting.view", "position": 50}]
