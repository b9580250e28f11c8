"""The API's answers of outbound webhooks: a subscription and a delivery (with its attempt log) as JSON."""

from __future__ import annotations

import json

from engine.plugin_api import as_utc
from plugins.channel_webhook.models import Delivery, Subscription


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def subscription_out(sub: Subscription, secret: str | None = None) -> dict:
    data = {"id": sub.id, "url": sub.url, "events": list(sub.events or []), "description": sub.description,
            "status": sub.status, "disabled_reason": sub.disabled_reason, "disabled_at": _iso(sub.disabled_at),
            "consecutive_failures": sub.consecutive_failures, "failing_since": _iso(sub.failing_since),
            "last_success_at": _iso(sub.last_success_at), "created_at": _iso(sub.created_at),
            "previous_secret_expires_at": _iso(sub.previous_secret_expires_at)
            if sub.previous_secret else None}
    if secret is not None:
        data["secret"] = secret
    return data


def delivery_out(delivery: Delivery, *, attempts: bool = False) -> dict:
    data = {"id": delivery.id, "subscription_id": delivery.subscription_id, "event_id": delivery.event_id,
            "event_type": delivery.event_type, "webhook_id": delivery.webhook_id, "status": delivery.status,
            "attempts": delivery.attempts, "next_attempt_at": _iso(delivery.next_attempt_at)
            if delivery.status == "pending" else None,
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
            "last_duration_ms": delivery.last_duration_ms, "created_at": _iso(delivery.created_at),
            "delivered_at": _iso(delivery.delivered_at)}
    if attempts:
        data["body"] = json.loads(delivery.body)
        data["attempt_log"] = [{"number": a.number, "manual": a.manual, "at": _iso(a.at), "status_code": a.status_code,
                                "duration_ms": a.duration_ms, "error": a.error, "response": a.response}
                               for a in delivery.attempt_log]
    return data
