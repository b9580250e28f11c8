"""Locations (list, create, a location's stock) and cycle counts (open a count of a location, scan or type
what is counted, review the differences, post them as adjustments or cancel), through the services the REST
API uses (engine/services/locations.py, counts.py). The staff member is the logged-in user."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine.admin.blueprint import bp
from engine.admin.permissions import require
from engine.admin.stock_forms import (
    all_locations,
    codes,
    error_text,
    number,
    refuse,
    staff_name,
    text,
    validated,
)
from engine.api import stock_ops
from engine.api.locations import LocationIn
from engine.db import db, page_by_id
from engine.domain import locations as location_rules
from engine.errors import DomainError, ValidationFailed
from engine.models import Location, StockCount
from engine.services import counts, locations

PAGE = 50


# --------------------------------------------------------------------------- locations


def _locations_page(status: int = 200, form=None):
    warehouse = (request.args.get("warehouse") or "").strip()[:location_rules.MAX_SEGMENT] or None
    cursor = (request.args.get("cursor") or "")[:location_rules.MAX_PATH] or None
    items, next_cursor = locations.list_locations(warehouse=warehouse, limit=PAGE, cursor=cursor)
    return render_template("admin/stock_locations.html", items=items, next_cursor=next_cursor, warehouse=warehouse,
                           kinds=location_rules.KINDS, form=form or {}), status


@bp.route("/locations")
@require("stock.view")
def stock_locations():
    """Locations in walk order with their stock totals."""
    return _locations_page()


@bp.route("/locations", methods=["POST"])
@require("stock.change")
def stock_create_location():
    """Create a warehouse or a location inside one, as ``POST /locations``."""
    try:
        data = {"path": text("path") or ""}
        if text("name"):
            data["name"] = text("name")
        if text("kind"):
            data["kind"] = text("kind")
        if request.form.get("pickable") in ("yes", "no"):
            data["pickable"] = request.form["pickable"] == "yes"
        data = validated(LocationIn, data)
        location = locations.create_location(data["path"], data.get("name"), data.get("kind"), data.get("pickable"))
    except DomainError as exc:
        refuse(exc)
        return _locations_page(exc.status, request.form)
    flash(_("Location %(path)s created.", path=location.code))
    return redirect(url_for("admin_ui.stock_locations"), 303)


@bp.route("/locations/<location_path:path>")
@require("stock.view")
def stock_location(path: str):
    """A location and the stock held there; open a count of it."""
    try:
        body = locations.get_location(path)
    except DomainError as exc:
        abort(exc.status, description=exc.message)
    open_count = db.session.execute(select(StockCount.id).join(Location, Location.id == StockCount.location_id)
                                    .where(StockCount.status == "open", Location.code == path)).scalar()
    return render_template("admin/stock_location.html", location=body, open_count=open_count)


# --------------------------------------------------------------------------- counts


def _counts_page(status: int = 200, form=None):
    cursor = request.args.get("cursor", "")
    stmt = select(StockCount).order_by(StockCount.id.desc())
    if request.args.get("status") in ("open", "posted", "cancelled"):
        stmt = stmt.where(StockCount.status == request.args["status"])
    rows, next_cursor = page_by_id(stmt, StockCount.id, PAGE, int(cursor) if re.fullmatch(r"[0-9]{1,18}", cursor)
                                   else None)
    return render_template("admin/stock_counts.html", rows=rows, next_cursor=next_cursor, locations=all_locations(),
                           status=request.args.get("status") or "", form=form or {}), status


@bp.route("/counts")
@require("stock.view")
def stock_counts():
    """Cycle counts, newest first; open a new one."""
    return _counts_page()


@bp.route("/counts", methods=["POST"])
@require("stock.change")
def stock_open_count():
    """Open a count of a location (all its products, or the skus given), as ``POST /stock/counts``."""
    try:
        data = {"location": text("location") or "", "staff": staff_name()}
        skus = codes((request.form.get("skus") or "").replace(" ", "\n"))
        if skus:
            data["skus"] = skus
        if text("note"):
            data["note"] = text("note")
        data = validated(stock_ops.CountOpenIn, data)
        count = counts.open_count(data["location"], data["staff"], data.get("skus"), data.get("note"))
    except DomainError as exc:
        refuse(exc)
        return _counts_page(exc.status, request.form)
    flash(_("Count %(id)s of %(location)s opened.", id=count["id"], location=count["location"]))
    return redirect(url_for("admin_ui.stock_count", count_id=count["id"]), 303)


def _count_page(count_id: int, status: int = 200, form=None):
    try:
        review = counts.review(count_id)
    except DomainError as exc:
        abort(exc.status, description=exc.message)
    return render_template("admin/stock_count.html", count=review, form=form or {}), status


@bp.route("/counts/<int:count_id>")
@require("stock.view")
def stock_count(count_id: int):
    """Review a count: expected vs counted per product, missing and unexpected serials, movements since."""
    return _count_page(count_id)


@bp.route("/counts/<int:count_id>/scan", methods=["POST"])
@require("stock.change")
def stock_count_scan(count_id: int):
    """One scanned unit (serial, barcode or sku) counted (htmx: feedback and the review; else the page)."""
    code = (request.form.get("code") or "").strip()
    status, ok = 200, True
    try:
        if not code:
            raise ValidationFailed(_("Scan a serial, barcode or sku."), errors={"code": ["required"]})
        data = validated(stock_ops.CountScansIn, {"scans": [code]})
        review = counts.submit(count_id, scans=data["scans"])
        message = _("%(code)s counted.", code=code)
    except DomainError as exc:
        status, ok = exc.status, False
        leaves = _scan_errors(exc.errors)
        message = "; ".join(leaves) if leaves else exc.message
        try:
            review = counts.review(count_id)
        except DomainError:
            abort(exc.status, description=exc.message)
    if not request.headers.get("HX-Request"):
        flash(message, "ok" if ok else "error")
        if not ok:
            return _count_page(count_id, status)
        return redirect(url_for("admin_ui.stock_count", count_id=count_id), 303)
    return render_template("admin/_stock_count_scan.html", ok=ok, message=message, count=review), status


def _scan_errors(errors) -> list[str]:
    scans = errors.get("scans") if isinstance(errors, dict) else None
    if isinstance(scans, dict):
        return [m for messages in scans.values() for m in (messages if isinstance(messages, list) else [messages])]
    return []


@bp.route("/counts/<int:count_id>/lines", methods=["POST"])
@require("stock.change")
def stock_count_lines(count_id: int):
    """Counted quantities of untracked products (they replace the tally), as ``POST .../scans`` with lines."""
    try:
        lines = []
        for sku, counted in zip(request.form.getlist("sku"), request.form.getlist("counted"), strict=False):
            value = number("counted", {"counted": counted}, label=sku)
            if value is not None:
                lines.append({"sku": sku, "counted": value})
        data = validated(stock_ops.CountScansIn, {"lines": lines})
        counts.submit(count_id, lines=data["lines"])
    except DomainError as exc:
        refuse(exc)
        return _count_page(count_id, exc.status, request.form)
    flash(_("Counted quantities saved."))
    return redirect(url_for("admin_ui.stock_count", count_id=count_id), 303)


@bp.route("/counts/<int:count_id>/post", methods=["POST"])
@require("stock.change")
def stock_count_post(count_id: int):
    """Post the differences as count_correction adjustments."""
    try:
        review = counts.post_count(count_id, staff_name())
    except DomainError as exc:
        refuse(exc)
        return _count_page(count_id, exc.status)
    flash(_("Count %(id)s posted (products adjusted: %(n)s).", id=count_id,
            n=sum(1 for line in review["lines"] if line["posted_difference"])))
    return redirect(url_for("admin_ui.stock_count", count_id=count_id), 303)


@bp.route("/counts/<int:count_id>/cancel", methods=["POST"])
@require("stock.change")
def stock_count_cancel(count_id: int):
    """Cancel a count (stock does not change)."""
    try:
        counts.cancel_count(count_id, staff_name())
    except DomainError as exc:
        flash(error_text(exc), "error")
        return _count_page(count_id, exc.status)
    flash(_("Count %(id)s cancelled.", id=count_id))
    return redirect(url_for("admin_ui.stock_count", count_id=count_id), 303)


COUNT_STATUS_LABELS = {"open": _l("Open"), "posted": _l("Posted"), "cancelled": _l("Cancelled")}


@bp.app_template_global("count_status_label")
def count_status_label(status: str) -> str:
    return str(COUNT_STATUS_LABELS.get(status, status))
