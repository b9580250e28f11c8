"""Purchase orders: the list (by status), drafting one (supplier, lines), a purchase order's page with the
buttons its transition table allows (engine/domain/purchase_transitions.py, read, never copied), changing a
draft's lines, and receiving goods (quantities, scanned serials, damaged units) through the services the
REST API uses (engine/services/purchasing.py, receiving.py). Suppliers can be added here too."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.admin.blueprint import bp
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.admin.stock_forms import all_locations, codes, number, refuse, text, validated
from engine.api import purchasing_schemas as schemas
from engine.domain import purchase_transitions as ptx
from engine.errors import DomainError, NotFound, ValidationFailed
from engine.services import purchasing, receiving

PAGE = 50
NEW_LINES = 5  # empty line rows on the draft forms
BUTTONS = ("order", "close", "cancel")  # the table's actions that are one button (edit and receive are forms)

STATUS_LABELS = {"draft": _l("Draft"), "ordered": _l("Ordered"), "partially_received": _l("Partially received"),
                 "received": _l("Received"), "closed": _l("Closed"), "cancelled": _l("Cancelled")}
ACTION_LABELS = {"order": _l("Order from the supplier"), "close": _l("Close"), "cancel": _l("Cancel purchase order")}


@bp.app_template_global("po_status_label")
def po_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.app_template_global("po_action_label")
def po_action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def _list_page(status_code: int = 200, form=None):
    status = request.args.get("status") if request.args.get("status") in ptx.STATUSES else None
    cursor = request.args.get("cursor", "")
    items, next_cursor = purchasing.list_purchase_orders(
        status=status, limit=PAGE, cursor=int(cursor) if re.fullmatch(r"[0-9]{1,18}", cursor) else None)
    suppliers, _next = purchasing.list_suppliers(limit=200)
    return render_template("admin/stock_purchase_orders.html", items=items, next_cursor=next_cursor, status=status,
                           statuses=ptx.STATUSES, suppliers=suppliers, new_lines=range(NEW_LINES),
                           form=form or {}), status_code


@bp.route("/purchase-orders")
@require("purchasing.view")
def purchase_orders():
    """Purchase orders, newest first, filtered by status; draft a new one."""
    return _list_page()


def _line_rows(form, prefix: str = "") -> list[dict]:
    """The line rows of a draft form (``sku-N``, ``quantity-N``, ``unit_cost-N``); empty rows are skipped."""
    lines = []
    for index in range(NEW_LINES + 1000):
        if f"sku-{index}" not in form:
            break
        sku = text(f"sku-{index}", form)
        if not sku:
            continue
        line = {"sku": sku, "quantity": number(f"quantity-{index}", form, label=_("Quantity"))}
        if line["quantity"] is None:
            message = _("Give the quantity of %(sku)s.", sku=sku)
            raise ValidationFailed(message, errors={"lines": {str(index): {"quantity": [message]}}})
        cost = number(f"unit_cost-{index}", form, label=_("Unit cost"))
        if cost is not None:
            line["unit_cost"] = cost
        lines.append(line)
    return lines


@bp.route("/purchase-orders", methods=["POST"])
@require("purchasing.change")
def purchase_order_create():
    """Draft a purchase order as ``POST /purchase-orders``."""
    try:
        data = {"supplier_id": number("supplier_id", label=_("Supplier")), "lines": _line_rows(request.form)}
        if text("notes"):
            data["notes"] = text("notes")
        data = validated(schemas.PurchaseOrderIn, data)
        po = purchasing.create_purchase_order(data)
    except DomainError as exc:
        refuse(exc)
        return _list_page(exc.status, request.form)
    flash(_("Purchase order %(number)s drafted.", number=po.number))
    return redirect(url_for("admin_ui.purchase_order", po_id=po.id), 303)


@bp.route("/suppliers", methods=["POST"])
@require("purchasing.change")
def supplier_create():
    """Add a supplier as ``POST /suppliers``."""
    try:
        data = {"name": text("name") or ""}
        for name in ("email", "phone", "currency"):
            if text(name):
                data[name] = text(name)
        lead = number("lead_time_days", label=_("Lead time (days)"))
        if lead is not None:
            data["lead_time_days"] = lead
        supplier = purchasing.create_supplier(validated(schemas.SupplierIn, data))
    except DomainError as exc:
        refuse(exc)
        return _list_page(exc.status, request.form)
    flash(_("Supplier %(name)s added.", name=supplier.name))
    return redirect(url_for("admin_ui.purchase_orders"), 303)


def _detail(po_id: int, status_code: int = 200, form=None):
    try:
        po = purchasing.get_purchase_order(po_id)
    except NotFound as exc:
        abort(404, description=exc.message)
    allowed = ptx.allowed_actions(po.status)
    expected = None
    if po.ordered_at is not None and po.supplier is not None:
        expected = po.ordered_at + timedelta(days=po.supplier.lead_time_days or 0)
    suppliers, _next = purchasing.list_suppliers(limit=200)
    return render_template("admin/stock_purchase_order.html", po=po, allowed=allowed,
                           buttons=[a for a in allowed if a in BUTTONS], expected=expected,
                           locations=all_locations(), suppliers=suppliers, new_lines=range(NEW_LINES),
                           form=form or {}), status_code


@bp.route("/purchase-orders/<int:po_id>")
@require("purchasing.view")
def purchase_order(po_id: int):
    """A purchase order: lines (ordered, received, damaged, short, over) and what its status allows."""
    return _detail(po_id)


@bp.route("/purchase-orders/<int:po_id>/lines", methods=["POST"])
@require("purchasing.change")
def purchase_order_lines(po_id: int):
    """Change a draft as ``PATCH /purchase-orders/{id}``: lines by sku (quantity 0 removes one), notes."""
    try:
        changes: dict[str, object] = {"lines": _line_rows(request.form), "notes": text("notes")}
        if "supplier_id" in request.form:
            changes["supplier_id"] = number("supplier_id", label=_("Supplier"))
        changes = validated(schemas.PurchaseOrderPatch, changes)
        purchasing.update_purchase_order(po_id, changes)
    except DomainError as exc:
        refuse(exc)
        return _detail(po_id, exc.status, request.form)
    flash(_("Draft saved."))
    return redirect(url_for("admin_ui.purchase_order", po_id=po_id), 303)


@bp.route("/purchase-orders/<int:po_id>/action", methods=["POST"])
@require("purchasing.change")
def purchase_order_action(po_id: int):
    """Order, close or cancel: the transition table decides (a refused action is a 409 naming the allowed)."""
    action = request.form.get("action", "")
    try:
        if action not in BUTTONS:
            message = _("Unknown action %(action)r.", action=action[:40])
            raise ValidationFailed(message, errors={"action": [message]})
        po = purchasing.act(po_id, action)
    except DomainError as exc:
        refuse(exc)
        return _detail(po_id, exc.status)
    flash(_("%(number)s is now %(status)s.", number=po.number, status=po_status_label(po.status)))
    return redirect(url_for("admin_ui.purchase_order", po_id=po_id), 303)


@bp.route("/purchase-orders/<int:po_id>/receive", methods=["POST"])
@require("purchasing.change")
def purchase_order_receive(po_id: int):
    """Receive goods as ``POST /purchase-orders/{id}/receive``: per line a quantity or scanned serials, and
    damaged units (recorded, not put on hand)."""
    form = request.form
    try:
        po = purchasing.get_purchase_order(po_id)
        items = []
        for index, line in enumerate(po.lines):
            serials = codes(form.get(f"serials-{index}"))
            quantity = number(f"quantity-{index}", label=line.product.sku)
            damaged = number(f"damaged-{index}", label=line.product.sku) or 0
            if not serials and not quantity and not damaged:
                continue
            item = {"sku": line.product.sku, "damaged": damaged}
            if serials:
                item["serials"] = serials
            if quantity is not None or not serials:
                item["quantity"] = quantity if quantity is not None else 0
            items.append(item)
        if not items:
            message = _("Nothing to receive: give quantities, serials or damaged units.")
            raise ValidationFailed(message, errors={"lines": [message]})
        data: dict[str, object] = {"lines": items}
        for name in ("location", "reference"):
            if text(name):
                data[name] = text(name)
        po = receiving.receive(po_id, validated(schemas.ReceiveIn, data))
    except NotFound as exc:
        abort(404, description=exc.message)
    except DomainError as exc:
        refuse(exc)
        return _detail(po_id, exc.status, form)
    flash(_("Received on %(number)s: it is now %(status)s.", number=po.number, status=po_status_label(po.status)))
    return redirect(url_for("admin_ui.purchase_order", po_id=po_id), 303)


def scan_line(po_id: int | None, index: int | None) -> tuple[int, str | None]:
    """The serial-scan box of a purchase order's receive form: (line index, its sku)."""
    try:
        po = purchasing.get_purchase_order(po_id or 0)
    except NotFound:
        return 0, None
    if index is None or not 0 <= index < len(po.lines):
        return 0, None
    return index, po.lines[index].product.sku


entry(_l("Purchase orders"), "admin_ui.purchase_orders", "purchasing.view", 45)
