"""Logging in and out. A login always starts a new server-side session (a fresh id: a session id planted
before the login is worthless); logging out deletes it. Failed logins are rate limited by Flask-Limiter,
per address and e-mail (``ADMIN_LOGIN_LIMIT``, default 5 per minute) and per address
(``ADMIN_LOGIN_LIMIT_PER_ADDRESS``, 30 per minute): an attacker is slowed down, while the real user, from
their own address, is never locked out of their account."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user

from engine.admin.blueprint import bp, limiter
from engine.admin.permissions import require
from engine.admin.sessions import StaffMember
from engine.services import staff


def _failed(response) -> bool:
    return response.status_code == 401  # only wrong passwords count against the limit


def _address_and_email() -> str:
    return f"{get_remote_address()}|{(request.form.get('email') or '').strip().lower()}"


def _limit() -> str:
    return current_app.config.get("ADMIN_LOGIN_LIMIT") or "5 per minute"


def _limit_per_address() -> str:
    return current_app.config.get("ADMIN_LOGIN_LIMIT_PER_ADDRESS") or "30 per minute"


def _throttled(limit):
    page = render_template("admin/login.html", error=_("Too many failed attempts. Wait a minute, then try again."),
                           email=request.form.get("email", ""))
    return make_response(page, 429, {"Retry-After": "60"})


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_limit, key_func=_address_and_email, methods=["POST"], deduct_when=_failed, on_breach=_throttled)
@limiter.limit(_limit_per_address, key_func=get_remote_address, methods=["POST"], deduct_when=_failed,
               on_breach=_throttled, scope="admin-login-address")
def login():
    """The login form; a correct e-mail and password open a new session."""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("admin_ui.dashboard"))
        return render_template("admin/login.html", email="", error=None)
    email, password = request.form.get("email", ""), request.form.get("password", "")
    user = staff.authenticate(email, password)
    if user is None:
        return render_template("admin/login.html", email=email,
                               error=_("Wrong e-mail address or password.")), 401
    session.clear()  # nothing of the anonymous session survives the login
    token = staff.open_session(user.id)
    login_user(StaffMember(token, user.id, user.email, user.role, user.locale))
    return redirect(_next_page())


def _next_page() -> str:
    """Where the login form was sent from, if that is an admin page of this site; else the dashboard."""
    target = request.args.get("next") or ""
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and parts.path.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin_ui.dashboard")


@bp.route("/logout", methods=["POST"])
@require("dashboard.view")
def logout():
    """End the session on the server, then in the browser."""
    staff.end_session(current_user.token)
    logout_user()
    session.clear()
    flash(_("You are logged out."))
    return redirect(url_for("admin_ui.login"))
