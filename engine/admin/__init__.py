"""The bundled admin at ``/admin/``: server-rendered Jinja + htmx (vendored in engine/static/admin), staff
login with server-side sessions, CSRF on every form and htmx request, roles (permissions.py), English and
Turkish. docs/admin.md is its manual.

Each screen is a module of this package that adds its routes to ``bp`` (blueprint.py); ``init_app``
imports them all. A view names its permission with ``@require``; the blueprint refuses any admin route that
names none."""

from __future__ import annotations

import importlib
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from engine.admin.blueprint import bp, limiter
from engine.i18n import catalog_directory

# modules of this package that add routes to bp (one per line: helpers add theirs)
SCREENS = (
    "menu", "login", "dashboard", "staff",
    "orders",
    "custret_customers", "custret_returns", "custret_refunds",
    "pickpack", "pickpack_ship",
    "stock", "stock_counts", "stock_purchasing",
    "plugin_screens", "plugins_screen", "tasks_screen",
)
TRANSLATIONS = Path(__file__).parent / "translations"
csrf = CSRFProtect()
login_manager = LoginManager()


def locale() -> str:
    """The admin's language: the logged-in user's, else the browser's best of en/tr."""
    if request and request.path.startswith("/admin") and getattr(current_user, "is_authenticated", False):
        return current_user.locale
    return request.accept_languages.best_match(["en", "tr"]) or "en" if request else "en"


def init_babel(app: Flask) -> None:
    """Flask-Babel for the whole app (before the plugins: they may use it), the admin's catalogs as the
    default domain."""
    directory = catalog_directory(TRANSLATIONS, "messages", app.instance_path, "admin")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(directory))
    Babel(app, locale_selector=locale)


def init_app(app: Flask) -> None:
    from engine.admin import sessions

    app.config["SESSION_COOKIE_SECURE"] = bool(app.config.get("COOKIE_SECURE", True))
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_NAME"] = "hookshop_session"
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked by the admin blueprint only (the API has keys)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "admin_ui.login"
    login_manager.session_protection = None  # the server-side session is the protection
    login_manager.user_loader(sessions.load_user)
    storage = app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://"
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "hookshop-admin")
    # Redis down: logins still work, counted in this process's memory until it is back
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    for name in SCREENS:
        importlib.import_module(f"engine.admin.{name}")
    app.register_blueprint(bp)
    app.jinja_env.globals.setdefault("csrf_token_field", _csrf_field)


def _csrf_field():
    from flask_wtf.csrf import generate_csrf
    from markupsafe import Markup

    return Markup(f'<input type="hidden" name="csrf_token" value="{generate_csrf()}">')
