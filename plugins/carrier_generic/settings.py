"""The settings of carrier_generic (``HOOKSHOP_CARRIER_GENERIC_*``, all optional), declared once
(engine/plugin_settings.py). The carriers file itself is validated by config.py."""

from __future__ import annotations

from engine.plugin_api import FilePath, PluginSettings, Secret, Setting

SETTINGS = PluginSettings("CARRIER_GENERIC", [
    Setting("CONFIG", FilePath(table=True), doc="the carriers file (TOML or JSON; in the TOML config also a table); "
                                            "unset: the built-in carrier generic"),
    Setting("TRACKING_SECRET", Secret(), doc="the tracking webhook's Standard Webhooks secret (whsec_<base64>); "
                                             "unset: tracking events are refused (401)"),
])
