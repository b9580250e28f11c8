"""Discovered plugins."""

from __future__ import annotations

from engine.api import Blueprint
from engine.api.schemas import PluginOut
from engine.plugins import registry

blp = Blueprint("plugins", __name__, url_prefix="/api/v1", description="Plugins")


@blp.route("/plugins")
@blp.alt_response(200, schema=PluginOut(many=True), success=True, description="every discovered plugin")
def list_plugins():
    """Discovered plugins, enabled or not, and the hooks each implements"""
    return [info.as_dict() for info in registry().infos]
