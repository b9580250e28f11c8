"""Admin screens and order-page sections that plugins contribute, without the core importing any plugin.

* A plugin mounts its own Flask blueprint under ``/admin/...`` through ``register_blueprints`` and passes it
  through :func:`protect`: the same gate as the admin's own routes (login, the route's ``@require``
  permission, the CSRF token on every state change), the same security headers and error pages. Its
  templates (a ``templates`` folder on the blueprint) extend ``admin/base.html``.
* ``admin_screens()`` adds its entries to the navigation (:class:`AdminScreen`), checked at start-up:
  :func:`init_app` refuses a screen whose endpoint is not a protected view, and any route under ``/admin``
  that names no permission.
* ``admin_order_panels(order)`` gives sections of the order page: the template global
  ``admin_order_panels(order)`` (and the partial ``admin/_order_panels.html``) shows those the user may see.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import NamedTuple

from flask import Blueprint, current_app
from flask_babel import gettext as _
from markupsafe import Markup

from engine.admin import blueprint as admin_blueprint
from engine.admin import permissions
from engine.admin.blueprint import bp
from engine.admin.menu import Entry
from engine.errors import PluginError
from engine.plugins import registry

log = logging.getLogger("hookshop.admin")
EXTENSION = "hookshop_admin_menu"  # app.extensions: the plugins' menu entries of this app
BY_PLUGIN = "hookshop_admin_screens"  # app.extensions: plugin name -> its AdminScreens (the plugins screen)


class AdminScreen(NamedTuple):
    """A plugin's entry in the admin's navigation (what ``admin_screens()`` returns). ``attention``
    (optional): a function without arguments returning ``[(label, count), ...]``, what waits for staff
    (failed deliveries, say), shown on the dashboard to the users who may open the screen."""

    label: object
    endpoint: str
    permission: str
    position: int
    attention: object = None


# the blueprints passed through protect (init_app accepts admin screens only on those)
_protected: weakref.WeakSet[Blueprint] = weakref.WeakSet()


def protect(blueprint: Blueprint) -> Blueprint:
    """Put a plugin's admin blueprint behind the admin's gate; returns it. Every view must carry
    ``@engine.admin.permissions.require(permission)`` (a view without one answers 403), and the blueprint
    must be mounted under ``/admin/`` (else registering it fails)."""
    blueprint.before_request(admin_blueprint._gate)
    blueprint.after_request(admin_blueprint._headers)
    for code in (403, 404, 409, 422):
        blueprint.register_error_handler(code, admin_blueprint._error_page)
    _protected.add(blueprint)

    def check_prefix(state):
        prefix = state.url_prefix or ""
        if not prefix.startswith("/admin/"):
            raise PluginError(f"the admin blueprint {blueprint.name!r} must be mounted under /admin/ "
                              f"(its url_prefix is {prefix!r})")

    blueprint.record_once(check_prefix)
    return blueprint


def _screens_of_plugins(pm) -> list[tuple[str, object]]:
    found = []
    for impl in pm.hook.admin_screens.get_hookimpls():
        for item in impl.function() or []:
            found.append((impl.plugin_name, item))
    return found


def init_app(app) -> None:
    """After the plugins' blueprints are registered: check every admin route and collect the plugins'
    screens into this app's menu (``app.extensions[EXTENSION]``, read by ``menu.admin_menu``)."""
    unprotected = [f"{rule.endpoint} ({rule.rule})" for rule in app.url_map.iter_rules()
                   if rule.rule.startswith("/admin") and rule.endpoint not in permissions.PUBLIC
                   and getattr(app.view_functions.get(rule.endpoint), "admin_permission", None) is None]
    if unprotected:
        raise PluginError("admin routes without a permission: " + ", ".join(sorted(unprotected)) + "; a plugin's "
                          "admin blueprint goes through engine.admin.plugin_screens.protect and each of its views "
                          "carries @engine.admin.permissions.require")
    entries: list[Entry] = []
    by_plugin: dict[str, list[AdminScreen]] = {}
    with app.app_context():
        screens = _screens_of_plugins(app.extensions["hookshop"].pm)
    for plugin, item in screens:
        try:
            if not isinstance(item, Iterable):
                raise TypeError(f"{item!r} is not a tuple")
            screen = AdminScreen(*item)
        except TypeError as exc:
            raise PluginError(f"plugin {plugin!r}: admin_screens() items are (label, endpoint, permission, "
                              f"position[, attention]): {exc}") from exc
        view = app.view_functions.get(screen.endpoint)
        if view is None or screen.endpoint.split(".")[0] not in app.blueprints or \
                app.blueprints[screen.endpoint.split(".")[0]] not in _protected:
            raise PluginError(f"plugin {plugin!r}: the admin screen {screen.endpoint!r} is not a view of a "
                              "blueprint passed through engine.admin.plugin_screens.protect")
        if screen.permission not in permissions.PERMISSIONS:
            raise PluginError(f"plugin {plugin!r}: unknown admin permission {screen.permission!r} "
                              f"(known: {', '.join(permissions.PERMISSIONS)})")
        entries.append(Entry(screen.label, screen.endpoint, screen.permission, int(screen.position)))
        by_plugin.setdefault(plugin, []).append(screen)
    app.extensions[EXTENSION] = entries
    app.extensions[BY_PLUGIN] = by_plugin


def order_panels(order) -> list[dict]:
    """The plugins' sections for ``order`` that the logged-in user may see, in ``position`` order. A plugin
    that raises gets a section saying so (logged); the page still renders."""
    panels = []
    for impl in registry().pm.hook.admin_order_panels.get_hookimpls():
        try:
            answer = impl.function(**{name: order for name in impl.argnames if name == "order"}) or []
            if not isinstance(answer, Iterable):
                raise TypeError(f"admin_order_panels returned {type(answer).__name__}, not a list")
            for panel in answer:
                permission = panel.get("permission") or "orders.view"
                if permissions.can(permission):
                    panels.append({"plugin": impl.plugin_name, "title": str(panel["title"]),
                                   "html": Markup(panel.get("html") or ""),
                                   "position": int(panel.get("position", 100))})
        except Exception:  # a plugin's section never breaks the order page
            log.exception("admin_order_panels of plugin %s failed", impl.plugin_name)
            message = _("This section could not be shown (the error is in the log).")
            panels.append({"plugin": impl.plugin_name, "title": impl.plugin_name, "failed": True,
                           "html": Markup('<p class="flash error">{}</p>').format(message), "position": 1000})
    return sorted(panels, key=lambda p: p["position"])


@bp.app_template_global("admin_order_panels")
def admin_order_panels(order) -> list[dict]:
    """Templates: ``{% for panel in admin_order_panels(order) %}`` (or include ``admin/_order_panels.html``)."""
    return order_panels(order)


@bp.app_template_global("admin_attention")
def admin_attention() -> list[dict]:
    """What the plugins' screens say waits for staff (``AdminScreen.attention``), for the dashboard: the
    screens the user may open, each count with its label and a link. A plugin that raises is logged and
    left out."""
    found = []
    for plugin, screens in current_app.extensions.get(BY_PLUGIN, {}).items():
        for screen in screens:
            if screen.attention is None or not permissions.can(screen.permission):
                continue
            try:
                found += [{"label": str(label), "count": int(count), "endpoint": screen.endpoint}
                          for label, count in screen.attention() or []]
            except Exception:
                log.exception("the dashboard counts of plugin %s failed", plugin)
    return found
