"""``create_app(config)``: the Flask app factory."""

from __future__ import annotations

import logging
import os

from flask import Flask, render_template_string, request
from flask.json.provider import DefaultJSONProvider

from engine import plugins, schema
from engine.config import database_uri, followup_delay, load_settings, public_url
from engine.db import configure_engine, db
from engine.domain.privacy import redacted_traceback

log = logging.getLogger("hookshop")

HOME = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hookshop</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}</style></head><body>
<h1>hookshop</h1><p>A plugin-based headless commerce engine. Database: <code>{{ db }}</code>;
jobs: <code>{{ jobs }}</code>.</p>
<ul><li><a href="/admin/">Admin</a> (log in as a staff user: <code>hookshop create-user</code>)</li>
<li><a href="/api/docs">API docs (Swagger UI)</a> · <a href="/api/redoc">ReDoc</a>
 · <a href="/api/openapi.json">openapi.json</a></li>
<li>Plugins: {% for p in plugins %}<code>{{ p.name }}</code>{% if not p.enabled %} (off: {{ p.reason }}){% endif %}
{% if not loop.last %}, {% endif %}{% endfor %}</li></ul>
<p>Call the API with <code>Authorization: Bearer &lt;key&gt;</code>
(create a key with <code>hookshop create-api-key --name me --scopes read,write</code>).</p>
</body></html>"""


class Engine(Flask):
    """Flask, with unhandled errors logged through ``redact_text``: no e-mail address, card number or
    secret reaches the log from an exception message (SQL statements never carry their parameters:
    ``hide_parameters``)."""

    def log_exception(self, exc_info) -> None:
        self.logger.error("Exception on %s [%s]: %s", request.path, request.method, redacted_traceback(exc_info[1]))


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides settings from the environment and ``HOOKSHOP_CONFIG``.

    Extra keys understood here: ``EXTRA_PLUGINS`` (a list of ``(name, plugin)``
    registered as if discovered), ``SQLALCHEMY_ENGINE_OPTIONS``.

    ``HOOKSHOP_EXTRA_PLUGINS`` (environment or TOML ``extra_plugins``) names
    plugins by import path, for a process that cannot be handed objects (a
    ``hookshop worker``, a test's subprocess): a comma separated list (or a TOML
    list) of ``module:attribute`` or ``module``, each optionally prefixed with
    ``name=``; the default name is the attribute's (or the module's last part).
    They are registered like ``EXTRA_PLUGINS``, after it; one that cannot be
    imported raises ``PluginError`` naming it.
    """
    config = dict(config or {})
    extra_plugins = list(config.pop("EXTRA_PLUGINS", ()))
    settings = load_settings(config)
    extra_plugins += _plugins_by_path(settings.pop("EXTRA_PLUGINS", None))
    instance = settings.get("INSTANCE") or os.environ.get("HOOKSHOP_INSTANCE")
    app = Engine("engine", instance_path=os.path.abspath(instance) if instance else None,
                 instance_relative_config=True)
    _configure(app, settings, config)
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)

    from engine import admin

    admin.init_babel(app)  # before the plugins: a plugin's messages use Flask-Babel too
    pm, infos = _load_plugins(app, settings, extra_plugins)
    _mount(app, pm)
    # Flask-Migrate registers its own `db` group on app.cli; hookshop's (below) replaces it: its `upgrade`
    # means every branch's head, the core's and each plugin's
    schema.init_app(app)
    _add_commands(app, pm)
    _add_pages(app, infos)
    return app


def _configure(app: Flask, settings: dict, config: dict) -> None:
    """The app's config from the settings: public URL, secret key, the database and its engine options, JSON,
    the reverse proxy."""
    app.config.update(settings)
    app.config["PUBLIC_URL"] = public_url(settings)
    followup_delay(settings)  # a HOOKSHOP_FOLLOWUP_AFTER that is not an ISO 8601 duration fails start-up here
    app.config["SECRET_KEY"] = settings.get("SECRET_KEY") or _instance_secret(app.instance_path)
    uri = database_uri(settings, app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    # a failing statement's error (and SQLAlchemy's logging) never shows its bound values: e-mail
    # addresses, addresses, secrets; set it to False explicitly to debug
    options.setdefault("hide_parameters", True)
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    else:
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 30)
    if uri.startswith("postgresql+psycopg2"):
        # psycopg2's executemany is a round trip per row, with the stock rows locked: psycopg 3 pipelines
        # it; psycopg2's execute_batch sends pages of them in one (SQLAlchemy's documented fast mode)
        options.setdefault("executemany_mode", "values_plus_batch")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if isinstance(app.json, DefaultJSONProvider):  # Flask's own, unless a subclass chose another
        app.json.sort_keys = False
    proxies = int(settings.get("PROXY_COUNT") or 0)
    if proxies > 0:  # behind a reverse proxy: the client's address and scheme are in its headers
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def _load_plugins(app: Flask, settings: dict, extra_plugins: list) -> tuple:
    """Discover and set up the plugins; their registry becomes ``app.extensions["hookshop"]``."""
    pm, infos = plugins.discover(disabled=settings.get("PLUGINS_DISABLED") or (), extra_plugins=extra_plugins,
                                 allowed=settings.get("PLUGINS_ALLOWED"))
    if settings.get("TRACE_PLUGINS"):
        plugins.trace(pm)
    registry = plugins.Registry(pm=pm, infos=infos)
    app.extensions["hookshop"] = registry
    with app.app_context():  # contract hooks may read current_app (a plugin's own settings)
        plugins.setup(pm, infos, app)
        registry.refresh()
    return pm, infos


def _mount(app: Flask, pm) -> None:
    """The API, the return request page, the admin, and the plugins' blueprints and admin screens."""
    from engine import admin, return_requests, structured_logs
    from engine.admin import plugin_screens
    from engine.api import init_api

    structured_logs.init_app(app)  # first: a request refused by the API's screens has an id too
    api = init_api(app)
    app.extensions["hookshop_api"] = api
    return_requests.init_app(app)  # the customer's return request page (no API key)
    admin.init_app(app)  # the bundled admin at /admin/
    for blueprint in plugins.collect(pm, "register_blueprints"):
        if hasattr(blueprint, "register_views_in_doc"):  # a flask-smorest Blueprint: documented
            api.register_blueprint(blueprint)
        else:
            app.register_blueprint(blueprint)
    plugin_screens.init_app(app)  # the plugins' admin screens, checked now that their blueprints are mounted


def _add_commands(app: Flask, pm) -> None:
    """`flask --app engine <command>` reaches the same commands as `hookshop <command>`, the plugins' too."""
    from engine.cli import cli as hookshop_cli

    for name, command in hookshop_cli.commands.items():
        app.cli.add_command(command, name)
    for command in plugins.collect(pm, "register_commands"):
        app.cli.add_command(command)


def _add_pages(app: Flask, infos) -> None:
    """The home page and ``/healthz`` (neither needs a key)."""

    @app.get("/")
    def home():
        # no URL, host or user name of the database or Redis: this page needs no key
        return render_template_string(HOME, db=_database_kind(db.engine.url),
                                      jobs="rq (Redis)" if app.config.get("REDIS_URL") else "background thread", plugins=infos)

    @app.get("/healthz")
    def healthz():
        from engine.health import check_health

        report, status = check_health()
        return report, status, {"Cache-Control": "no-store"}


def _instance_secret(instance_path: str) -> str:
    """Without HOOKSHOP_SECRET_KEY: a random key made once and kept in ``instance/secret_key`` (mode 0600),
    so admin sessions survive a restart and every process of one instance signs cookies alike."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as fh:
            key = fh.read().strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(instance_path, exist_ok=True)
    key = os.urandom(32).hex()
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # the first process to get there wins; the others read its key
    except FileExistsError:
        with open(path, encoding="ascii") as fh:
            key = fh.read().strip()
    finally:
        os.unlink(tmp)
    return key


def _database_kind(url) -> str:
    """``"PostgreSQL"`` or ``"SQLite"``: what the unauthenticated home page may say about the database."""
    names = {"postgresql": "PostgreSQL", "sqlite": "SQLite", "mysql": "MySQL", "mariadb": "MariaDB"}
    return names.get(url.get_backend_name(), url.get_backend_name())


def _plugins_by_path(value) -> list[tuple[str, object]]:
    """``"name=module:attr, module2"`` (or a list of such strings) -> ``[(name, object), ...]``."""
    import importlib

    from engine.errors import PluginError

    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    found: list[tuple[str, object]] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, path = item.rpartition("=")
        module_name, _, attr = path.strip().partition(":")
        name = name.strip() or attr or module_name.rsplit(".", 1)[-1]
        try:
            plugin = importlib.import_module(module_name)
            for part in filter(None, attr.split(".")):
                plugin = getattr(plugin, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"plugin {name!r} ({path.strip()}) from HOOKSHOP_EXTRA_PLUGINS failed to import: "
                              f"{exc}") from exc
        found.append((name, plugin))
    return found


def init_schema(app: Flask) -> list[str]:
    """Create or upgrade the schema: every migration branch to its head (safe to run again).

    Returns what was done, one line each (empty when the schema was already at head).
    """
    return schema.upgrade(app)
