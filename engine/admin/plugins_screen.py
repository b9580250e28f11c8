"""The plugins screen (owner only): every discovered plugin, enabled or not and why, its version, the hooks
it implements and the admin screens it adds. The same facts as ``hookshop plugins`` and
``GET /api/v1/plugins`` (``PluginInfo.as_dict``)."""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l

from engine.admin.blueprint import bp
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.admin.plugin_screens import BY_PLUGIN
from engine.plugins import registry


@bp.route("/plugins")
@require("plugins.view")
def plugins():
    screens = current_app.extensions.get(BY_PLUGIN, {})
    rows = [{**info.as_dict(), "screens": screens.get(info.name, [])}
            for info in registry().infos]
    return render_template("admin/plugins.html", plugins=rows)


entry(_l("Plugins"), "admin_ui.plugins", "plugins.view", 85)
