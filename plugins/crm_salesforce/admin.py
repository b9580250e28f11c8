"""The admin's CRM screen (``/admin/crm``, permission ``customers.view``): the records mirrored to Salesforce,
errors first, with Salesforce's error code and message, and a retry button (``customers.change``); and the
order page's section "Salesforce" (hook ``admin_order_panels``)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from engine.plugin_api import AdminScreen, db, protect, redact_text, require_permission

from . import sync
from .api import list_records
from .models import KINDS, STATUSES, SyncRecord

admin = protect(Blueprint("crm_salesforce_admin", __name__, url_prefix="/admin/crm", template_folder="templates"))

STATUS_LABELS = {"pending": _l("Waiting"), "synced": _l("Synced"), "error": _l("Refused by Salesforce")}
PAGE = 50


def screens() -> list[AdminScreen]:
    return [AdminScreen(_l("Salesforce"), "crm_salesforce_admin.records", "customers.view", 80, attention)]


def attention() -> list[tuple]:
    """The dashboard: records Salesforce refused."""
    return [(_("Salesforce sync errors"), sync.counts()["error"])]


def error_text(row: SyncRecord) -> str:
    """Salesforce's message of a record, redacted, without the error code the screen shows beside it."""
    text = redact_text(row.last_error or "")
    prefix = f"{row.error_code}: " if row.error_code else None
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


@admin.route("")
@require_permission("customers.view")
def records():
    status = request.args.get("status")
    status = status if status in STATUSES else ("error" if "status" not in request.args else None)
    kind = request.args.get("kind") if request.args.get("kind") in KINDS else None
    cursor = request.args.get("cursor", "")
    rows, next_cursor = list_records(status=status, kind=kind, limit=PAGE,
                                     cursor=int(cursor) if cursor.isdigit() and len(cursor) <= 18 else None)
    return render_template("admin/crm_salesforce/records.html", rows=rows, next_cursor=next_cursor,
                           status_filter=status, kind_filter=kind, statuses=STATUS_LABELS, kinds=KINDS,
                           counts=sync.counts(), error_text=error_text)


@admin.route("/<int:record_id>/retry", methods=["POST"])
@require_permission("customers.change")
def retry(record_id: int):
    if sync.retry(record_id) is None:
        flash(_("No such record."), "error")
    else:
        flash(_("The record is pushed to Salesforce again within a minute."), "success")
    return redirect(url_for("crm_salesforce_admin.records", status=request.form.get("status", "error")))


def order_panels(order) -> list[dict]:
    rows = list(db.session.execute(select(SyncRecord).where(or_(
        (SyncRecord.kind == "order") & (SyncRecord.hookshop_id == order.id),
        (SyncRecord.kind.in_(("contact", "account"))) & (SyncRecord.hookshop_id == order.customer_id)))
        .order_by(SyncRecord.id)).scalars())
    html = render_template("admin/crm_salesforce/_order_panel.html", rows=rows, statuses=STATUS_LABELS,
                           error_text=error_text)
    return [{"title": _l("Salesforce"), "html": html, "permission": "customers.view", "position": 80}]
