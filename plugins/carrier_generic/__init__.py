"""carrier_generic: ship with any carrier that has no plugin of its own.

Works with no configuration: a built-in carrier ``generic`` with the services
``standard`` (3 business days) and ``express`` (1 business day) and a default
rate table by weight. Settings prefix ``HOOKSHOP_CARRIER_GENERIC_``: ``CONFIG``
(a carriers file, TOML or JSON), ``TRACKING_SECRET`` (``whsec_<base64>``, the
tracking webhook's Standard Webhooks secret). The tracking links are built on the
core's ``HOOKSHOP_PUBLIC_URL`` (never on a request's Host header). See the README.
"""

from __future__ import annotations

import logging

from flask import current_app

from engine.plugin_api import hookimpl
from plugins.carrier_generic import models  # noqa: F401 - the plugin's tables (its migrations create them)
from plugins.carrier_generic.carrier import GenericCarrier
from plugins.carrier_generic.config import ConfigError, load
from plugins.carrier_generic.settings import SETTINGS
from plugins.carrier_generic.tracking import secret_key

log = logging.getLogger("hookshop.carrier_generic")
__all__ = ["SETTINGS"]  # the settings declaration (settings.py): `hookshop plugins` and docs list it


@hookimpl
def plugin_setup(app):
    """Read the carriers file once; a broken file keeps the plugin off with the reason."""
    try:
        settings = load(app.config)
    except ConfigError as exc:
        return f"HOOKSHOP_CARRIER_GENERIC_CONFIG: {exc}"
    app.extensions["carrier_generic"] = settings
    if app.config.get("CARRIER_GENERIC_PUBLIC_URL") and not app.config.get("PUBLIC_URL"):
        log.warning("carrier_generic: HOOKSHOP_CARRIER_GENERIC_PUBLIC_URL is no longer read; set HOOKSHOP_PUBLIC_URL "
                    "(tracking links are relative paths until then)")
    secret = SETTINGS.get("TRACKING_SECRET", app.config)
    without = [c.name for c in settings.carriers if secret_key(c.tracking.secret or secret) is None]
    if without:
        why = "is not set" if not secret else "is not whsec_<base64>"
        log.warning("carrier_generic: HOOKSHOP_CARRIER_GENERIC_TRACKING_SECRET %s, so tracking events of %s are "
                    "refused (401); rates and shipping work", why, ", ".join(without))
    return None


@hookimpl
def register_carriers():
    settings = current_app.extensions.get("carrier_generic") or load(current_app.config)
    return [GenericCarrier(config) for config in settings.carriers]


@hookimpl
def order_documents(order, kind):
    """The packing slip of a shipped order, for the shipping message (a gift's shows no prices)."""
    if kind != "order_shipped" or not order.shipments:
        return []
    from plugins.carrier_generic import api, labels

    pdf = labels.packing_slip(order, sender=api.sender_for(order), shipments=list(order.shipments))
    return [(f"packing-slip-{order.number}.pdf", "application/pdf", pdf)]


@hookimpl
def register_blueprints():
    from plugins.carrier_generic.api import blp, public_pages

    return [blp, public_pages]
