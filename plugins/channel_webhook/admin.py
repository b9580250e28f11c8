"""The admin's webhooks screen (``/admin/webhooks``, owner only: ``webhooks.view``, ``webhooks.change``): the
outbound subscriptions, the delivery log with each attempt, and the buttons to redeliver a delivery and to
enable or disable a subscription. Behind the admin's gate (``engine.plugin_api.protect``); every
change goes through ``outbound`` (the same functions as the API)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from engine.plugin_api import AdminScreen, DomainError, db, mask_url, protect, redact_text, require_permission

from . import outbound
from .models import Delivery, Subscription

admin = protect(Blueprint("channel_webhook_admin", __name__, url_prefix="/admin/webhooks",
                          template_folder="templates"))

STATUS_LABELS = {"pending": _l("Waiting for a retry"), "sending": _l("Sending"), "delivered": _l("Delivered"),
                 "failed": _l("Failed"), "cancelled": _l("Cancelled"), "active": _l("Active"),
                 "disabled": _l("Disabled")}
DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed", "cancelled")
PAGE = 50


def screens() -> list[AdminScreen]:
    return [AdminScreen(_l("Webhooks"), "channel_webhook_admin.webhooks", "webhooks.view", 80, attention)]


def attention() -> list[tuple]:
    """The dashboard's "failed webhooks": deliveries given up for good."""
    return [(_("Webhook deliveries given up"), failed_count())]


def _number(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


def failed_count() -> int:
    """Deliveries given up for good (the dashboard's "failed webhooks")."""
    return db.session.execute(select(func.count()).select_from(Delivery).where(Delivery.status == "failed")).scalar_one()


def _page(status: int = 200):
    status_filter = request.args.get("status") if request.args.get("status") in DELIVERY_STATUSES else None
    subscription = _number("subscription")
    deliveries, next_cursor = outbound.list_deliveries(subscription=subscription, status=status_filter, limit=PAGE,
                                                       cursor=_number("cursor"))
    subscriptions = outbound.list_subscriptions()
    counts = {sub.id: outbound.counts_by_status(sub.id) for sub in subscriptions}
    return render_template("admin/channel_webhook/webhooks.html", subscriptions=subscriptions, counts=counts,
                           deliveries=deliveries, next_cursor=next_cursor, status_filter=status_filter,
                           subscription_filter=subscription, statuses=DELIVERY_STATUSES, labels=STATUS_LABELS,
                           mask_url=mask_url, redact=redact_text, failed=failed_count()), status


@admin.route("")
@require_permission("webhooks.view")
def webhooks():
    return _page()


@admin.route("/deliveries/<int:delivery_id>")
@require_permission("webhooks.view")
def delivery(delivery_id: int):
    try:
        row = outbound.get_delivery(delivery_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return _page(exc.status)
    return render_template("admin/channel_webhook/delivery.html", delivery=row, labels=STATUS_LABELS,
                           subscription=db.session.get(Subscription, row.subscription_id), mask_url=mask_url,
                           redact=redact_text)


def _back():
    target = request.form.get("back", "")
    if target.startswith("/admin/webhooks") and "//" not in target:
        return redirect(target, 303)
    return redirect(url_for("channel_webhook_admin.webhooks"), 303)


@admin.route("/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@require_permission("webhooks.change")
def redeliver(delivery_id: int):
    """Send the delivery again now (same webhook-id: the receiver deduplicates)."""
    try:
        row = outbound.redeliver(delivery_id)
    except DomainError as exc:
        flash(exc.message, "error")
        return _page(exc.status)
    if row.status == "delivered":
        flash(_("Delivery %(id)s redelivered: the receiver answered %(code)s.", id=row.id,
                code=row.last_status_code))
    else:
        flash(_("Delivery %(id)s was sent again, and the receiver did not accept it: %(error)s", id=row.id,
                error=redact_text(row.last_error or "")), "error")
    return _back()


@admin.route("/subscriptions/<int:subscription_id>/active", methods=["POST"])
@require_permission("webhooks.change")
def set_active(subscription_id: int):
    """Enable (its run of failures forgotten) or disable a subscription."""
    active = request.form.get("active") == "1"
    try:
        outbound.update_subscription(subscription_id, {"active": active})
    except DomainError as exc:
        flash(exc.message, "error")
        return _page(exc.status)
    flash(_("Subscription %(id)s enabled.", id=subscription_id) if active
          else _("Subscription %(id)s disabled.", id=subscription_id))
    return _back()
