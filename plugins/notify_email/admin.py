"""The admin's notifications log (``/admin/notifications``, permission ``notifications.view``): every e-mail
the plugin queued, newest first, with its (masked) recipient, template, language, status, attempts and
last error; and the order page's section "Notifications sent" (hook ``admin_order_panels``)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from engine.plugin_api import (
    ORDER_NUMBER_OFFSET,
    AdminScreen,
    Order,
    db,
    mask_email,
    protect,
    redact_text,
    require_permission,
)

from .api import list_messages
from .models import STATUSES, Message

admin = protect(Blueprint("notify_email_admin", __name__, url_prefix="/admin/notifications",
                          template_folder="templates"))

STATUS_LABELS = {"queued": _l("Queued"), "sent": _l("Sent"), "failed": _l("Failed, retried later"),
                 "dead": _l("Given up")}
TEMPLATE_LABELS = {"order_received": _l("Order received"), "receipt": _l("Receipt"), "shipped": _l("Shipped"),
                   "followup": _l("Follow-up"), "return_requested": _l("Return requested"),
                   "return_approved": _l("Return approved"), "return_rejected": _l("Return rejected"),
                   "return_received": _l("Return received"), "refund_issued": _l("Refund issued"),
                   "stock_low": _l("Low stock (staff)")}
PAGE = 50


def screens() -> list[AdminScreen]:
    return [AdminScreen(_l("Notifications"), "notify_email_admin.notifications", "notifications.view", 75,
                        attention)]


def attention() -> list[tuple]:
    """The dashboard: e-mails whose retries ran out."""
    dead = db.session.execute(select(func.count()).select_from(Message).where(Message.status == "dead")).scalar_one()
    return [(_("E-mails given up"), dead)]


def _helpers() -> dict:
    return {"statuses": STATUS_LABELS, "templates": TEMPLATE_LABELS, "mask_email": mask_email,
            "redact": redact_text}


@admin.route("")
@require_permission("notifications.view")
def notifications():
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    number = (request.args.get("order") or "").strip()[:64]
    cursor = request.args.get("cursor", "")
    order_id, messages, next_cursor = None, [], None
    if number:  # an order number is the id plus ORDER_NUMBER_OFFSET
        wanted = int(number) - ORDER_NUMBER_OFFSET if number.isdigit() and len(number) <= 18 else None
        order_id = wanted if wanted and wanted > 0 and db.session.get(Order, wanted) is not None else None
    if not number or order_id is not None:
        messages, next_cursor = list_messages(order=order_id, status=status, limit=PAGE,
                                              cursor=int(cursor) if cursor.isdigit() and len(cursor) <= 18 else None)
    numbers = {m.order_id: str(ORDER_NUMBER_OFFSET + m.order_id) for m in messages if m.order_id}
    return render_template("admin/notify_email/notifications.html", messages=messages, numbers=numbers,
                           next_cursor=next_cursor, status_filter=status, order_filter=number,
                           unknown_order=bool(number) and order_id is None, **_helpers())


def order_panels(order) -> list[dict]:
    messages = list(db.session.execute(select(Message).where(Message.order_id == order.id)
                                       .order_by(Message.id)).scalars())
    html = render_template("admin/notify_email/_order_panel.html", messages=messages, **_helpers())
    return [{"title": _l("Notifications sent"), "html": html, "permission": "notifications.view", "position": 60}]
