"""Discovered plugins."""

from __future__ import annotations

from flask import current_app

from engine.api import Blueprint
from engine.api.schemas import PluginOut
from engine.plugins import registry

blp = Blueprint("plugins", __name__, url_prefix="/api/v1", description="Plugins")


@blp.route("/plugins")
@blp.alt_response(200, schema=PluginOut(many=True), success=True, description="every discovered plugin")
def list_plugins():
    """Discovered plugins, enabled or not, the hooks each implements, and its settings

    `settings`: each setting the plugin declares, with its current value (a secret's is masked) and a
    `problem` when the value is not valid; `missing_settings`: the required ones that are not set."""
    return [info.as_dict(current_app.config) for info in registry().infos]
