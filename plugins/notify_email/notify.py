"""From a stage hook to queued messages: which template, to whom, in which language."""

from __future__ import annotations

import logging

from . import messages, sending
from .settings import current

log = logging.getLogger("hookshop.notify_email")


def customer_message(hook: str, order, event: dict) -> list[int]:
    """Queue the customer's message for ``hook`` (none when the order has no e-mail: logged)."""
    if order is None or not messages.wanted(hook, event):
        return []
    template = messages.CUSTOMER_MESSAGES[hook]
    recipients = messages.customer_recipients(order, template)
    if not recipients:
        log.info("order %s has no e-mail address: no %s message is sent", order.number, template)
        return []
    settings = current()
    language, tag = messages.language_for(order, settings)
    payload = event.get("payload") or {}
    data = {"locale_tag": tag, **{key: payload[key] for key in ("shipment_id", "return_id", "refund_id", "amount",
                                                                  "reason", "resolution") if key in payload}}
    return sending.queue(hook, event, template, [(address, {"show_prices": prices}) for address, prices in recipients],
                         order=order, language=language, data=data)


def stock_alert(product, available, event: dict) -> list[int]:
    """Queue the low-stock alert to the warehouse staff (in the shop's default language)."""
    if product is None:
        return []
    settings = current()
    recipients = messages.warehouse_recipients(event, settings)
    if not recipients:
        log.warning("stock of %s is low (%s available) but nobody gets the alert: add a staff user with the "
                    "warehouse role or set HOOKSHOP_WAREHOUSE_EMAIL", product.sku, available)
        return []
    language, tag = messages.language_for(None, settings)
    payload = event.get("payload") or {}
    data = {"locale_tag": tag, "product_id": product.id, "sku": product.sku, "available": available,
            "reorder_point": payload.get("reorder_point"), "currency": product.currency}
    return sending.queue("stock_low", event, "stock_low", [(address, {}) for address in recipients],
                         language=language, data=data)
