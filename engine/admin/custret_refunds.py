"""Refunds: every refund (pending, succeeded, failed) newest first, and a refund of an order made through
``engine.services.payments.refund_order``, which never refunds more than was captured minus refunded."""

from __future__ import annotations

from collections.abc import Sequence

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine.admin.blueprint import bp
from engine.admin.custret import PAGE, cursor_arg, find_order, minor_units, order_form, posted_order, refused
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.db import db
from engine.errors import DomainError
from engine.models import Order, Refund

STATUS_LABELS = {"pending": _l("Pending"), "succeeded": _l("Succeeded"), "failed": _l("Failed"),
                 "superseded": _l("Superseded")}


@bp.app_template_global("refund_status_label")
def refund_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.route("/refunds")
@require("refunds.view")
def refund_list():
    status = request.args.get("status", "")
    query = (request.args.get("order") or "").strip()
    stmt = select(Refund).order_by(Refund.id.desc())
    if status in STATUS_LABELS:
        stmt = stmt.where(Refund.status == status)
    if query:
        order = find_order(query)
        stmt = stmt.where(Refund.order_id == (order.id if order else -1))
    cursor = cursor_arg(request.args.get("cursor"))
    if cursor:
        stmt = stmt.where(Refund.id < cursor)
    rows = list(db.session.execute(stmt.limit(PAGE + 1)).scalars())
    orders = {o.id: o for o in db.session.execute(select(Order).where(
        Order.id.in_({r.order_id for r in rows}))).scalars()} if rows else {}
    return render_template("admin/custret_refunds.html", refunds=rows[:PAGE], orders=orders, status=status,
                           statuses=STATUS_LABELS, order_query=query,
                           next_cursor=rows[PAGE - 1].id if len(rows) > PAGE else None)


def new_context(order: Order | None, query: str = "") -> dict:
    refunds: Sequence[Refund] = []
    if order is not None:
        refunds = db.session.execute(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id.desc())
                                     .options(selectinload(Refund.payment))).scalars().all()
    pending = sum(r.amount for r in refunds if r.status == "pending")
    return {"order": order, "query": query, "refunds": refunds,
            "refundable": order.paid_total - order.refunded_total - pending if order is not None else 0}


@bp.route("/refunds/new")
@require("refunds.create")
def new_refund():
    """The refund form of one order (``?order=`` its number, or its id): paid, refunded, what is left."""
    return order_form("admin/custret_refund_new.html", new_context)


@bp.route("/refunds", methods=["POST"])
@require("refunds.create")
def create_refund():
    form = request.form
    order = posted_order()
    order_id = order.id
    from engine.services import payments

    try:
        amount = minor_units(form.get("amount", ""), order.currency)
        payments.refund_order(order.id, amount, (form.get("reason") or "").strip()[:500])
    except DomainError as exc:
        db.session.rollback()
        return refused(exc, "admin/custret_refund_new.html", form=form,
                       **new_context(db.session.get(Order, order_id), order.number))
    flash(_("Refunded %(amount)s on order %(number)s.", amount=_money(amount, order.currency), number=order.number))
    return redirect(url_for("admin_ui.new_refund", order=order.number), 303)


def _money(amount: int, currency: str) -> str:
    from engine.admin.blueprint import money

    return money(amount, currency)


entry(_l("Refunds"), "admin_ui.refund_list", "refunds.view", 65)
