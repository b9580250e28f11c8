"""crm_salesforce: customers and orders mirrored to Salesforce in near real time (simple-salesforce).

Every order stage hook marks the order, its customer's Contact and (B2B) Account in the plugin's sync-status
table and pushes what waits in sObject Collections upserts by external id (``sync``). Salesforce errors are
recorded per record (``GET /api/v1/crm/salesforce/sync``, ``/admin/crm``); a call Salesforce could not take
raises, so the outbox relay retries the hook with back-off. ``hookshop crm sync --since`` backfills,
``hookshop crm pull`` reads Contacts' VIP flag back. Settings: ``HOOKSHOP_SALESFORCE_*`` (README).
"""

from __future__ import annotations

from . import models  # noqa: F401  (the tables exist once the plugin is imported)
from .settings import EXTENSION, SETTINGS, SettingsError, load

from engine.plugin_api import hookimpl  # isort: skip

__all__ = ["SETTINGS"]  # the settings declaration (settings.py): `hookshop plugins` and docs list it


@hookimpl
def plugin_setup(app):
    try:
        settings = load(app.config)
    except SettingsError as exc:
        return str(exc)
    app.extensions[EXTENSION] = {"settings": settings, "connection": None}
    return None


def _sync(order) -> None:
    from .sync import on_order

    on_order(order.id)


# ----------------------------------------------------------------- stage hooks (after commit, at least once)
# Each one mirrors the order as it is now (and its customer); a replay finds nothing changed and sends nothing.


@hookimpl
def order_placed(order):
    _sync(order)


@hookimpl
def order_paid(order):
    _sync(order)


@hookimpl
def order_on_hold(order):
    _sync(order)


@hookimpl
def order_released(order):
    _sync(order)


@hookimpl
def order_picked(order):
    _sync(order)


@hookimpl
def order_confirmed(order):
    _sync(order)


@hookimpl
def order_packed(order):
    _sync(order)


@hookimpl
def order_shipped(order):
    _sync(order)


@hookimpl
def order_delivered(order):
    _sync(order)


@hookimpl
def order_completed(order):
    _sync(order)


@hookimpl
def order_cancelled(order):
    _sync(order)


@hookimpl
def refund_issued(order):
    _sync(order)  # the customer's total spent changed


@hookimpl
def return_received(order):
    _sync(order)


# ----------------------------------------------------------------- contract hooks


@hookimpl
def periodic_tasks(now):
    from .sync import sweep

    sweep(now)


@hookimpl
def register_blueprints():
    from .admin import admin
    from .api import blp

    return [blp, admin]


@hookimpl
def admin_screens():
    from .admin import screens

    return screens()


@hookimpl
def admin_order_panels(order):
    from .admin import order_panels

    return order_panels(order)


@hookimpl
def register_commands():
    from .cli import crm

    return [crm]
