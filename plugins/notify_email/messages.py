"""Which message each hook sends, to whom, in which language, and how it is rendered.

``CUSTOMER_MESSAGES`` is the one table of stage hook -> template: a new hook (``return_approved``) is
one more line once the core declares it. Templates are Jinja (``<template>.txt`` and ``<template>.html``;
the text one sets ``subject``), looked up in ``<instance>/notify_email/templates`` first, then the
plugin's own, and translated with the plugin's gettext domain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select

from engine.plugin_api import Order, Product, Return, Shipment, StaffUser, db

from . import i18n
from .settings import LANGUAGES, Settings

log = logging.getLogger("hookshop.notify_email")

# stage hook -> the customer's template. The hooks that the core does not declare (yet) are skipped.
CUSTOMER_MESSAGES: dict[str, str] = {
    "order_placed": "order_received",
    "order_confirmed": "receipt",
    "order_shipped": "shipped",
    "order_completed": "followup",  # only when the sweeper completed it after the follow-up delay
    "return_requested": "return_requested",
    "return_approved": "return_approved",
    "return_rejected": "return_rejected",
    "return_received": "return_received",
    "refund_issued": "refund_issued",
}
# templates that also go to a gift's recipient (shipping_address.email), without prices
TO_GIFT_RECIPIENT = {"shipped", "followup"}
STAFF_TEMPLATES = {"stock_low"}


@dataclass
class Rendered:
    subject: str
    text: str
    html: str
    attachments: list[tuple[str, str, bytes]]


def wanted(hook: str, event: dict) -> bool:
    """``order_completed`` is the follow-up only when the sweeper completed the order for it."""
    return hook != "order_completed" or bool((event.get("payload") or {}).get("followup"))


def customer_recipients(order: Order, template: str) -> list[tuple[str, bool]]:
    """``(address, show_prices)`` pairs: the buyer, plus a gift's recipient for the shipping news."""
    found = []
    if order.email:
        found.append((order.email, True))
    recipient = (order.shipping_address or {}).get("email")
    if order.gift and template in TO_GIFT_RECIPIENT and recipient and recipient.lower() != (order.email or "").lower():
        found.append((recipient, False))
    return found


def warehouse_recipients(event: dict, settings: Settings) -> list[str]:
    """The stock_low payload's ``recipients``, else the staff with the warehouse role, else HOOKSHOP_WAREHOUSE_EMAIL."""
    given = [r for r in ((event.get("payload") or {}).get("recipients") or []) if isinstance(r, str) and "@" in r]
    if given:
        return list(dict.fromkeys(given))
    staff = list(db.session.execute(select(StaffUser.email).where(StaffUser.role == "warehouse", StaffUser.active.is_(True))
                                    .order_by(StaffUser.id)).scalars())
    return staff or list(settings.warehouse_email)


def language_for(order: Order | None, settings: Settings) -> tuple[str, str | None]:
    """The message language and the tag it came from: the order's, the customer's, the shop's default."""
    candidates = [order.locale, getattr(order.customer, "locale", None)] if order is not None else []
    for tag in [*candidates, settings.default_locale]:
        language = i18n.language_of(tag, LANGUAGES)
        if language:
            return language, tag
    return "en", None


# --------------------------------------------------------------------------- rendering


def environment(app) -> Environment:
    """The app's template environment: the shop's overrides first, then the plugin's templates."""
    env = app.extensions.get("notify_email_jinja")
    if env is None:
        loaders = [FileSystemLoader(str(Path(app.instance_path) / "notify_email" / "templates")),
                   FileSystemLoader(str(Path(__file__).parent / "templates"))]
        env = Environment(loader=ChoiceLoader(loaders), extensions=["jinja2.ext.i18n"], undefined=StrictUndefined,
                          autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                          trim_blocks=True, lstrip_blocks=True)
        domain = app.extensions["notify_email_domain"]
        # install_gettext_callables is what the jinja2.ext.i18n extension adds to its environment (extend())
        env.install_gettext_callables(domain.gettext, domain.ngettext, newstyle=True)  # type: ignore[attr-defined]
        app.extensions["notify_email_jinja"] = env
    return env


def context(message, settings: Settings) -> dict:
    """What every template sees: the shop, the order (if any), the objects the event named, formatters."""
    data = message.data or {}
    order = db.session.get(Order, message.order_id) if message.order_id else None
    locale = i18n.formatting_locale(data.get("locale_tag"), message.language)
    currency = order.currency if order is not None else data.get("currency") or "EUR"
    shipment = db.session.get(Shipment, data["shipment_id"]) if data.get("shipment_id") else None
    order_return = db.session.get(Return, data["return_id"]) if data.get("return_id") else None
    product = db.session.get(Product, data["product_id"]) if data.get("product_id") else None
    number = order.number if order is not None else ""
    return {
        "shop_name": settings.shop_name, "support_email": settings.support_email, "order": order,
        "shipment": shipment, "order_return": order_return, "product": product, "data": data,
        "show_prices": data.get("show_prices", True), "recipient": message.recipient,
        "language": message.language, "document_numbers": [], "tax_breakdown": [],
        "payment_instructions": current_app.config.get("PAYMENT_INSTRUCTIONS"),
        "money": lambda amount, cur=None: i18n.money(amount, cur or currency, locale),
        "day": lambda value: i18n.day(value, locale),
        "link": settings.link,
        "returns_link": settings.link(f"/returns/request?order={number}"),
        "rating_links": [(score, settings.link(f"/feedback?order={number}&rating={score}")) for score in range(1, 6)],
    }


def render(message, settings: Settings, attachments: list) -> Rendered:
    """The message in its language: subject, plain text and HTML (templates read at send time)."""
    env = environment(current_app)
    facts = [doc[3] if isinstance(doc[3], dict) else {"number": doc[3]}
             for doc in attachments if len(doc) > 3 and doc[3]]
    ctx = context(message, settings)
    ctx["document_numbers"] = [f["number"] for f in facts if f.get("number")]
    ctx["tax_breakdown"] = [row for f in facts for row in f.get("tax") or []]
    with force_locale(message.language):
        text_template = env.get_template(f"{message.template}.txt")
        module = text_template.make_module(ctx)
        text = str(module)
        # the template's ``{% set subject = ... %}``: a template module's attributes are its exported names
        subject = module.subject  # type: ignore[attr-defined]
        html = env.get_template(f"{message.template}.html").render(ctx, subject=subject)
    return Rendered(subject=str(subject).strip(), text=text, html=html,
                    attachments=[(doc[0], doc[1], doc[2]) for doc in attachments])
