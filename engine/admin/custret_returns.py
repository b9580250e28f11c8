"""Returns (RMA): the list with a status filter, the return's page with the actions the return transition table
(engine/domain/return_transitions.py) allows from its status and the user's role allows, and opening a return
for a shipped order. Every action is a call of engine/services/returns.py or return_receipts.py."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from engine.admin.blueprint import bp
from engine.admin.custret import PAGE, cursor_arg, find_order, minor_units, order_form, posted_order, refused
from engine.admin.menu import entry
from engine.admin.permissions import can, require
from engine.db import db
from engine.domain import return_transitions as rma
from engine.errors import DomainError, NotFound, ValidationFailed
from engine.models import Order, Refund, Return
from engine.services import return_receipts, returns

# the return table's actions -> the permission each needs (the table itself stays in engine/domain)
RETURN_ACTIONS = {"approve": "returns.change", "reject": "returns.change", "receive": "returns.receive",
                  "resolve": "returns.change"}
STATUS_LABELS = {"requested": _l("Requested"), "approved": _l("Approved"), "rejected": _l("Rejected"),
                 "received": _l("Received"), "resolved": _l("Resolved")}
RESOLUTION_LABELS = {"refund": _l("Refund"), "exchange": _l("Exchange")}
ACTION_LABELS = {"approve": _l("Approve"), "reject": _l("Reject"), "receive": _l("Receive"),
                 "resolve": _l("Retry the refund")}
CONDITIONS = {"resellable": _l("Resellable"), "damaged": _l("Damaged")}


@bp.app_template_global("return_status_label")
def return_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.app_template_global("resolution_label")
def resolution_label(resolution: str) -> str:
    return str(RESOLUTION_LABELS.get(resolution, resolution))


def return_actions(status: str) -> list[str]:
    """Of the actions the return table allows from ``status``, those the logged-in user may take."""
    return [a for a in rma.allowed_actions(status) if can(RETURN_ACTIONS[a])]


@bp.route("/returns")
@require("returns.view")
def return_list():
    status = request.args.get("status", "")
    order = find_order(request.args.get("order")) if request.args.get("order") else None
    stmt = select(Return).options(selectinload(Return.order)).order_by(Return.id.desc())
    if status in rma.STATUSES:
        stmt = stmt.where(Return.status == status)
    if request.args.get("order"):
        stmt = stmt.where(Return.order_id == (order.id if order else -1))
    cursor = cursor_arg(request.args.get("cursor"))
    if cursor:
        stmt = stmt.where(Return.id < cursor)
    rows = list(db.session.execute(stmt.limit(PAGE + 1)).scalars())
    counts = dict(db.session.execute(select(Return.status, func.count()).group_by(Return.status)).all())
    return render_template("admin/custret_returns.html", returns=rows[:PAGE], status=status,
                           order_query=request.args.get("order", ""), statuses=rma.STATUSES, counts=counts,
                           next_cursor=rows[PAGE - 1].id if len(rows) > PAGE else None)


def _return(return_id: int) -> Return:
    try:
        return returns.get_return(return_id)
    except NotFound:
        abort(404)


def detail_context(order_return: Return) -> dict:
    order = order_return.order
    names = {line.sku: line.name for line in order.lines}
    tracked = {line.sku for line in order.lines if line.serials}
    refunds = db.session.execute(select(Refund).where(Refund.return_id == order_return.id)
                                 .order_by(Refund.id)).scalars().all()
    return {"r": order_return, "order": order, "names": names, "tracked": tracked, "refunds": refunds,
            "actions": return_actions(order_return.status), "action_labels": ACTION_LABELS,
            "conditions": CONDITIONS, "refundable": order.paid_total - order.refunded_total,
            "quarantine": return_receipts.quarantine_location()}


@bp.route("/returns/<int:return_id>")
@require("returns.view")
def return_detail(return_id: int):
    return render_template("admin/custret_return.html", **detail_context(_return(return_id)))


def _act(return_id: int, action: str, call):
    """Run one action of the table: the role's permission is the route's; the service checks the table (a 409
    naming the allowed actions when the status moved on) and the rest."""
    _return(return_id)
    try:
        call()
    except DomainError as exc:
        db.session.rollback()
        return refused(exc, "admin/custret_return.html", **detail_context(_return(return_id)))
    order_return = returns.get_return(return_id)
    db.session.refresh(order_return)
    flash(_("Return %(id)s: %(status)s.", id=return_id, status=return_status_label(order_return.status)))
    return redirect(url_for("admin_ui.return_detail", return_id=return_id), 303)


@bp.route("/returns/<int:return_id>/approve", methods=["POST"])
@require("returns.change")
def approve_return(return_id: int):
    return _act(return_id, "approve", lambda: returns.approve_return(return_id))


@bp.route("/returns/<int:return_id>/reject", methods=["POST"])
@require("returns.change")
def reject_return(return_id: int):
    reason = (request.form.get("reason") or "").strip()

    def call():
        if not reason:
            raise ValidationFailed(_("Give the reason for the rejection (the customer is told)."),
                                   errors={"reason": ["required"]})
        returns.reject_return(return_id, reason[:1000])

    return _act(return_id, "reject", call)


def received_lines(order_return: Return, form) -> list[dict] | None:
    """The form's conditions as the service's ``lines``: the units named damaged (per serial for tracked
    products, scanned or chosen, a quantity for the others); units not named are resellable."""
    damaged: dict[str, list[str]] = {}
    quantities: dict[str, int] = {}
    on_return = {s: item["sku"] for item in order_return.lines for s in item.get("serials") or []}
    for index, item in enumerate(order_return.lines):
        for position, serial in enumerate(item.get("serials") or []):
            if form.get(f"condition-{index}-{position}") == "damaged":
                damaged.setdefault(item["sku"], []).append(serial)
        if not item.get("serials"):
            text = (form.get(f"damaged-{index}") or "0").strip() or "0"
            if not text.isdigit() or len(text) > 9:
                raise ValidationFailed(_("Enter the number of damaged units of %(sku)s.", sku=item["sku"]),
                                       errors={f"damaged-{index}": ["not a number"]})
            if int(text):
                quantities[item["sku"]] = quantities.get(item["sku"], 0) + int(text)
    scanned = [s.strip() for s in (form.get("damaged_serials") or "").splitlines() if s.strip()]
    unknown = [s for s in scanned if s not in on_return]
    if unknown:
        raise ValidationFailed(_("Not on this return: %(serials)s", serials=", ".join(unknown[:20])),
                               errors={"damaged_serials": unknown})
    for serial in scanned:
        if serial not in damaged.setdefault(on_return[serial], []):
            damaged[on_return[serial]].append(serial)
    lines = [{"sku": sku, "serials": serials, "quantity": len(serials), "condition": "damaged"}
             for sku, serials in damaged.items() if serials]
    lines += [{"sku": sku, "quantity": quantity, "condition": "damaged"} for sku, quantity in quantities.items()]
    return lines or None


@bp.route("/returns/<int:return_id>/receive", methods=["POST"])
@require("returns.receive")
def receive_return(return_id: int):
    order_return = _return(return_id)
    form = request.form
    if (form.get("refund_amount") or "").strip() and not can("refunds.create"):
        abort(403)  # the warehouse receives; another amount than the lines' share is customer service's call

    def call():
        restock = form.get("write_off") != "1"
        lines = received_lines(order_return, form) if restock else None
        amount = None
        if (form.get("refund_amount") or "").strip():
            if order_return.resolution != "refund":
                raise ValidationFailed(_("An exchange refunds nothing."), errors={"refund_amount": ["only for a refund"]})
            amount = minor_units(form["refund_amount"], order_return.order.currency, "refund_amount")
        location = (form.get("location") or "").strip()[:64] or None
        return_receipts.receive_return(return_id, location, restock, lines, amount)

    return _act(return_id, "receive", call)


@bp.route("/returns/<int:return_id>/resolve", methods=["POST"])
@require("returns.change")
def resolve_return(return_id: int):
    return _act(return_id, "resolve", lambda: return_receipts.resolve_return(return_id))


# ------------------------------------------------------------------ opening a return (customer service)


def new_context(order: Order | None, query: str = "") -> dict:
    lines = returns.returnable_lines(order) if order is not None else []
    return {"order": order, "query": query, "lines": lines, "returnable": order is not None and
            order.status in returns.RETURNABLE and any(line["quantity"] for line in lines),
            "resolutions": RESOLUTION_LABELS, "needs_approval": bool(_config("RETURNS_REQUIRE_APPROVAL"))}


def _config(name: str):
    from flask import current_app

    return current_app.config.get(name)


@bp.route("/returns/new")
@require("returns.change")
def new_return():
    """The form for a return of one order (``?order=`` its number, or its id)."""
    return order_form("admin/custret_return_new.html", new_context)


@bp.route("/returns", methods=["POST"])
@require("returns.change")
def open_return():
    form = request.form
    order = posted_order()
    order_id = order.id
    try:
        lines = []
        for line in returns.returnable_lines(order):
            if line["tracked"]:
                serials = [s for s in form.getlist(f"serial-{line['line_id']}") if s]
                if serials:
                    lines.append({"sku": line["sku"], "quantity": len(serials), "serials": serials})
                continue
            text = (form.get(f"quantity-{line['line_id']}") or "0").strip() or "0"
            if not text.isdigit() or len(text) > 9:
                raise ValidationFailed(_("Enter how many units of %(sku)s come back.", sku=line["sku"]),
                                       errors={f"quantity-{line['line_id']}": ["not a number"]})
            if int(text):
                lines.append({"sku": line["sku"], "quantity": int(text)})
        reason = (form.get("reason") or "").strip()
        resolution = form.get("resolution", "")
        if not lines:
            raise ValidationFailed(_("Choose at least one unit to return."), errors={"lines": ["empty"]})
        if not reason:
            raise ValidationFailed(_("Give the reason for the return."), errors={"reason": ["required"]})
        if resolution not in rma.RESOLUTIONS:
            raise ValidationFailed(_("Choose refund or exchange."), errors={"resolution": ["refund or exchange"]})
        order_return = returns.open_return(order.id, lines, reason[:1000], resolution, source="staff")
    except DomainError as exc:
        db.session.rollback()
        return refused(exc, "admin/custret_return_new.html", form=form,
                       **new_context(db.session.get(Order, order_id), order.number))
    flash(_("Return %(id)s opened: %(status)s.", id=order_return.id, status=return_status_label(order_return.status)))
    return redirect(url_for("admin_ui.return_detail", return_id=order_return.id), 303)


entry(_l("Returns"), "admin_ui.return_list", "returns.view", 60)
