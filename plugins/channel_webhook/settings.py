"""The settings of channel_webhook (``HOOKSHOP_CHANNEL_WEBHOOK_*``, all optional), declared once
(engine/plugin_settings.py). They are read at call time (``SETTINGS.get``); ``plugin_setup`` checks them."""

from __future__ import annotations

from engine.plugin_api import Integer, Items, Networks, Number, PluginSettings, Setting

DEFAULT_DELAYS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400)
DEFAULT_TIMEOUT = 10.0

SETTINGS = PluginSettings("CHANNEL_WEBHOOK", [
    Setting("ALLOW_PRIVATE_TARGETS", Networks(), default=[],
            doc="outbound targets on private, loopback or reserved addresses: true, or the networks allowed"),
    Setting("TIMEOUT", Number(min=0), default=DEFAULT_TIMEOUT, doc="seconds an outbound delivery may take"),
    Setting("RETRY_DELAYS", Items(Number(min=0), spaces=True), default=list(DEFAULT_DELAYS),
            doc="seconds between an outbound delivery's attempts (about three days in all)"),
    Setting("RETRY_JITTER", Number(min=0), default=0.2, doc="the random spread of each retry delay (0.2: ±20 %)"),
    Setting("DISABLE_AFTER_HOURS", Number(min=0), default=72.0,
            doc="a subscription failing this long without one success is disabled"),
    Setting("TOLERANCE_SECONDS", Integer(min=0), default=300,
            doc="how far a generic channel's webhook-timestamp may be from now"),
])
