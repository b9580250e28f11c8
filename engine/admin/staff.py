"""Staff users (owner only): list, create, change role or language, deactivate, set a new password."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.admin.blueprint import bp
from engine.admin.permissions import ROLES, require
from engine.errors import DomainError
from engine.services import staff


@bp.route("/staff")
@require("staff.manage")
def staff_users():
    return render_template("admin/staff.html", users=staff.list_users(), roles=ROLES, languages=staff.LANGUAGES)


@bp.route("/staff", methods=["POST"])
@require("staff.manage")
def create_staff_user():
    form = request.form
    try:
        user = staff.create_user(form.get("email", ""), form.get("role", ""), form.get("password", ""),
                                 locale=form.get("locale") or "en")
    except DomainError as exc:
        flash(exc.message, "error")
        return render_template("admin/staff.html", users=staff.list_users(), roles=ROLES,
                               languages=staff.LANGUAGES, form=form), 422
    flash(_("User %(email)s created.", email=user.email))
    return redirect(url_for("admin_ui.staff_users"))


@bp.route("/staff/<int:user_id>", methods=["POST"])
@require("staff.manage")
def update_staff_user(user_id: int):
    form = request.form
    try:
        staff.update_user(user_id, role=form.get("role") or None, locale=form.get("locale") or None,
                          active=None if "active" not in form else form.get("active") == "1",
                          password=form.get("password") or None)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin_ui.staff_users")), 303
    flash(_("Saved."))
    return redirect(url_for("admin_ui.staff_users"))


@bp.route("/me/language", methods=["POST"])
@require("dashboard.view")
def my_language():
    """Each staff member picks the admin's language for themselves."""
    try:
        staff.update_user(current_user.user_id, locale=request.form.get("locale", ""))
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url + "admin/")
                    else url_for("admin_ui.dashboard"))
