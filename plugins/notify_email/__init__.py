"""notify_email: the customer's and the warehouse's e-mails over SMTP, in English and Turkish.

Stage hooks queue a message per (event, template, recipient) in the plugin's table and a background job
sends it (``sending``); ``messages.CUSTOMER_MESSAGES`` maps each hook to its template; ``order_documents``
of the other plugins gives the attachments (the receipt PDF, the packing slip). Settings: ``HOOKSHOP_SMTP_*``,
``HOOKSHOP_MAIL_FROM``, ``HOOKSHOP_SHOP_NAME``, ``HOOKSHOP_SUPPORT_EMAIL``, ``HOOKSHOP_DEFAULT_LOCALE``,
``HOOKSHOP_WAREHOUSE_EMAIL`` (declared in settings.py; README). Without ``HOOKSHOP_SMTP_HOST`` the messages are written to the log.
"""

from __future__ import annotations

import logging

from engine.plugin_api import hookimpl, known_hook

from . import models  # noqa: F401  (the plugin's table: its migrations create it)
from .settings import EXTENSION, SETTINGS, SettingsError, load

log = logging.getLogger("hookshop.notify_email")
__all__ = ["SETTINGS"]  # the settings declaration (settings.py): `hookshop plugins` and docs list it


@hookimpl
def plugin_setup(app):
    try:
        settings = load(app.config)
    except SettingsError as exc:
        return str(exc)
    from . import i18n

    app.extensions[EXTENSION] = settings
    app.extensions["notify_email_domain"] = i18n.setup(app)
    if settings.logs_only:
        log.warning("notify_email: HOOKSHOP_SMTP_HOST is not set, so e-mails are written to the log "
                    "(logger hookshop.notify_email) instead of being sent")
    if not app.config.get("FOLLOWUP_AFTER") and not app.config.get("FOLLOWUP_DAYS"):
        log.info("notify_email: HOOKSHOP_FOLLOWUP_AFTER is not set: no follow-up e-mail after delivery")
    return None


def _customer_hook(hook: str):
    """The implementation of one row of ``CUSTOMER_MESSAGES`` (runs after the other plugins: trylast,
    so the receipt is numbered before its message is written)."""

    def implementation(order, event):
        from . import notify

        notify.customer_message(hook, order, event)

    implementation.__name__ = implementation.__qualname__ = hook
    implementation.__doc__ = f"Stage hook {hook}: queue and send the customer's message."
    return hookimpl(specname=hook, trylast=True)(implementation)


def _register_customer_hooks() -> None:
    from .messages import CUSTOMER_MESSAGES

    for hook in CUSTOMER_MESSAGES:
        if known_hook(hook):  # a row for a hook the core does not declare yet waits for it
            globals()[hook] = _customer_hook(hook)


_register_customer_hooks()


@hookimpl(trylast=True)
def stock_low(product, available, event):
    from . import notify

    notify.stock_alert(product, available, event)


@hookimpl
def periodic_tasks(now):
    from .sending import send_due

    send_due(now)


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
    from .cli import notifications

    return [notifications]
