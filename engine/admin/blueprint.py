"""The admin's blueprint and what every admin request goes through: the login, the route's permission, the
CSRF token on every state change, and the security headers of every answer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user

from engine.admin import permissions
from engine.domain.money import exponent

bp = Blueprint("admin_ui", __name__, url_prefix="/admin", static_folder="../static/admin",
               static_url_path="/static")
limiter = Limiter(get_remote_address, default_limits=[])

# what an admin page may load: only hookshop's own files (htmx and the scripts are vendored)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


@bp.before_request
def _gate():
    """Logged in, allowed, and (for anything but GET/HEAD) carrying the session's CSRF token."""
    if request.endpoint in permissions.PUBLIC:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            from engine.admin import csrf

            csrf.protect()
        return None
    if not current_user.is_authenticated:
        if request.headers.get("HX-Request"):  # htmx: a full reload to the login page
            return "", 401, {"HX-Redirect": url_for("admin_ui.login", next=request.full_path)}
        return redirect(url_for("admin_ui.login", next=request.full_path))
    view = current_app.view_functions.get(request.endpoint)
    permission = getattr(view, "admin_permission", None)
    if permission is None or not permissions.allowed(current_user.role, permission):
        abort(403)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        from engine.admin import csrf

        csrf.protect()
    return None


@bp.after_request
def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "admin_ui.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_template_global("can")
def can(permission: str) -> bool:
    return permissions.can(permission)


@bp.app_template_filter("money")
def money(amount, currency: str) -> str:
    """Minor units in the admin's locale: ``€12.50`` (en), ``€12,50`` (tr)."""
    from babel.numbers import format_currency

    if amount is None:
        return ""
    value = Decimal(int(amount)).scaleb(-exponent(currency))
    return format_currency(value, currency, locale=str(get_locale() or "en"))


@bp.app_template_filter("when")
def when(value) -> str:
    """A timestamp (datetime or ISO string) in the admin's locale and the shop's time zone."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, "medium")


@bp.errorhandler(RateLimitExceeded)
def _throttled(error):
    return error.get_response()  # the login page with its message (login.py), not the API's JSON


@bp.errorhandler(403)
@bp.errorhandler(404)
@bp.errorhandler(409)
@bp.errorhandler(422)
def _error_page(error):
    return render_template("admin/error.html", error=error), error.code
