"""Customers: the searchable list, the profile (contact, B2B details, addresses, history, figures per currency,
preferred services, VIP/repeat, notes), staff edits and the merge of duplicates, all through
engine/services/customers.py."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from engine.admin.blueprint import bp
from engine.admin.custret import PAGE, cursor_arg, error_text, order_url, refused
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.db import db
from engine.domain import customers as rules
from engine.errors import DomainError, NotFound
from engine.models import Customer, Order, Return
from engine.services import customers

VIP_CHOICES = {"": None, "1": True, "0": False}  # the form's value -> update_customer's vip (None: the rule)
EDITABLE = ("name", "phone", "company", "tax_id", "locale", "notes")


@bp.app_template_global("order_url")
def _order_url(order_id: int) -> str:
    return order_url(order_id)


def _get(customer_id: int) -> Customer:
    try:
        return customers.get_customer(customer_id)
    except NotFound:
        abort(404)


@bp.route("/customers")
@require("customers.view")
def customer_list():
    q = (request.args.get("q") or "").strip()
    vip = {"1": True, "0": False}.get(request.args.get("vip", ""))
    items, next_cursor = customers.list_customers(q=q or None, vip=vip, limit=PAGE,
                                                  cursor=cursor_arg(request.args.get("cursor")))
    return render_template("admin/custret_customers.html", customers=items, q=q, vip=request.args.get("vip", ""),
                           next_cursor=next_cursor, averages=rules.averages)


def profile_context(customer: Customer) -> dict:
    cursor = cursor_arg(request.args.get("cursor"))
    stmt = (select(Order).where(Order.customer_id == customer.id).order_by(Order.id.desc())
            .options(selectinload(Order.flag_rows)))
    if cursor:
        stmt = stmt.where(Order.id < cursor)
    history = list(db.session.execute(stmt.limit(PAGE + 1)).scalars())
    more = len(history) > PAGE
    history = history[:PAGE]
    order_returns = db.session.execute(
        select(Return, Order).join(Order, Order.id == Return.order_id).where(Order.customer_id == customer.id)
        .order_by(Return.id.desc()).limit(PAGE)).all()
    tombstones = db.session.execute(select(Customer).where(Customer.merged_into_id == customer.id)
                                    .order_by(Customer.id)).scalars().all()
    spent, counts = dict(customer.spent_by_currency or {}), dict(customer.orders_by_currency or {})
    return {"customer": customer, "history": history, "next_cursor": history[-1].id if more else None,
            "returns": order_returns, "tombstones": tombstones, "spent": spent, "counts": counts,
            "averages": rules.averages(spent, counts), "preferred": customers.preferences_of(customer.id),
            "repeat": customer.order_count > 1, "vip_choices": VIP_CHOICES}


@bp.route("/customers/<int:customer_id>")
@require("customers.view")
def customer_profile(customer_id: int):
    return render_template("admin/custret_customer.html", **profile_context(_get(customer_id)))


@bp.route("/customers/<int:customer_id>", methods=["POST"])
@require("customers.change")
def update_customer(customer_id: int):
    """Staff edits: only the fields that changed go to the service (a tax id kept as it was is not checked
    again)."""
    customer = _get(customer_id)
    form = request.form
    changes: dict[str, str | bool | None] = {}
    for name in EDITABLE:
        if name in form:
            given = form.get(name, "").strip() if name != "notes" else form.get(name, "").replace("\r\n", "\n")
            value = given or None
            if name == "name":
                value = value or customer.name  # a profile always has a name
            if value != getattr(customer, name):
                changes[name] = value
    if "vip" in form:
        if form["vip"] not in VIP_CHOICES:
            abort(422)
        if VIP_CHOICES[form["vip"]] is not customer.vip_by_staff:
            changes["vip"] = VIP_CHOICES[form["vip"]]
    if not changes:
        flash(_("Nothing changed."))
        return redirect(url_for("admin_ui.customer_profile", customer_id=customer_id), 303)
    try:
        customers.update_customer(customer_id, changes)
    except DomainError as exc:
        message = error_text(exc)
        db.session.rollback()
        context = profile_context(_get(customer_id))
        flash(message, "error")
        return render_template("admin/custret_customer.html", form=form, **context), exc.status
    flash(_("Customer saved."))
    return redirect(url_for("admin_ui.customer_profile", customer_id=customer_id), 303)


def _suggestions(customer: Customer) -> list[Customer]:
    """Profiles that look like the same person: the same name, phone or company (not merged, not this one)."""
    same = [func.lower(Customer.name) == customer.name.lower()]
    if customer.phone:
        same.append(Customer.phone == customer.phone)
    if customer.company:
        same.append(func.lower(Customer.company) == customer.company.lower())
    return list(db.session.execute(select(Customer).where(
        or_(*same), Customer.id != customer.id, Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc()).limit(10)).scalars())


def merge_context(customer: Customer) -> dict:
    q = (request.values.get("q") or "").strip()
    other_id = cursor_arg(request.values.get("from"))
    other = db.session.get(Customer, other_id) if other_id and other_id != customer.id else None
    found = []
    if q:
        found = [c for c in customers.list_customers(q=q, limit=20)[0] if c.id != customer.id]
    return {"customer": customer, "q": q, "other": other, "found": found,
            "suggestions": _suggestions(customer) if other is None else [], "averages": rules.averages}


@bp.route("/customers/<int:customer_id>/merge")
@require("customers.change")
def merge_customer_form(customer_id: int):
    """Pick the duplicate to merge into this profile (search or suggestions), then confirm."""
    customer = _get(customer_id)
    context = merge_context(customer)
    if request.values.get("from") and context["other"] is None:
        flash(_("There is no customer with that id."), "error")
        return render_template("admin/custret_merge.html", **context), 404
    return render_template("admin/custret_merge.html", **context)


@bp.route("/customers/<int:customer_id>/merge", methods=["POST"])
@require("customers.change")
def merge_customer(customer_id: int):
    customer = _get(customer_id)
    other_id = cursor_arg(request.form.get("from"))
    if other_id is None:
        flash(_("Choose the duplicate to merge into this customer."), "error")
        return render_template("admin/custret_merge.html", **merge_context(customer)), 422
    try:
        survivor, merged = customers.merge_customers(customer_id, [other_id], source=f"staff {current_user.email}")
    except DomainError as exc:
        return refused(exc, "admin/custret_merge.html", **merge_context(_get(customer_id)))
    if merged:
        flash(_("Customer %(other)s merged into this one: their orders, returns, spending and notes are here now.",
                other=other_id))
    else:
        flash(_("Customer %(other)s was merged into this one already.", other=other_id))
    return redirect(url_for("admin_ui.customer_profile", customer_id=survivor.id), 303)


entry(_l("Customers"), "admin_ui.customer_list", "customers.view", 50)
