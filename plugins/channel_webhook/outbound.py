"""Outbound webhooks: subscriptions, the delivery log, sending and retries.

A stage hook records one ``Delivery`` per matching active subscription (unique per subscription and
outbox event, so a re-run hook records nothing twice) and commits; only then, with no transaction
open, is each delivery POSTed. A failed attempt is retried by ``periodic_tasks(now)`` with
exponential back-off and jitter (``CHANNEL_WEBHOOK_RETRY_DELAYS``: 5 s, 30 s, 2 min, 10 min, 30 min,
1 h, 2 h, 4 h, 8 h, 12 h, 24 h, 24 h, about three days in all). ``410 Gone`` disables the
subscription at once; so does a run of failures lasting ``CHANNEL_WEBHOOK_DISABLE_AFTER_HOURS``
(72) without one success, and staff are told (a warning in the log, and the subscription's
``status``/``disabled_reason`` in the API).
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    Conflict,
    NotFound,
    ValidationFailed,
    as_utc,
    db,
    end_read,
    mask_url,
    page_by_id,
    redact_text,
    reset_session,
    sign_headers,
    stage_hookspecs,
    transaction,
    utcnow,
)
from plugins.channel_webhook import net, signing
from plugins.channel_webhook.models import Delivery, DeliveryAttempt, Subscription
from plugins.channel_webhook.settings import SETTINGS

log = logging.getLogger("hookshop.channel_webhook")

# Every stage hook of the core, in the stages' order (the hookspecs with an ``event`` argument). The plugin
# forwards each of them (see ``__init__``).
EVENTS = tuple(stage_hookspecs())


# --------------------------------------------------------------------------- settings (settings.py)


def retry_delays() -> list[float]:
    return list(SETTINGS.get("RETRY_DELAYS"))


def jitter() -> float:
    return SETTINGS.get("RETRY_JITTER")


def timeout() -> float:
    return SETTINGS.get("TIMEOUT")


def disable_after() -> timedelta:
    return timedelta(hours=SETTINGS.get("DISABLE_AFTER_HOURS"))


def lease() -> timedelta:
    return timedelta(seconds=max(120.0, timeout() * 3))


# --------------------------------------------------------------------------- subscriptions


def _check_events(events) -> list[str]:
    unknown = [e for e in events if e != "*" and e not in EVENTS]
    if unknown:
        raise ValidationFailed("unknown events", errors={"events": [
            f"unknown event {e!r}; known: * (every event), {', '.join(EVENTS)}" for e in unknown]})
    return list(dict.fromkeys(events))


def _check_url(url: str) -> None:
    try:
        net.check_url(url)
    except net.TargetRefused as exc:
        raise ValidationFailed(f"the URL cannot receive webhooks: {exc}", errors={"url": [str(exc)]}) from exc


def get_subscription(subscription_id: int, *, lock: bool = False) -> Subscription:
    stmt = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    sub = db.session.execute(stmt).scalar_one_or_none()
    if sub is None:
        raise NotFound(f"no webhook subscription with id {subscription_id}")
    return sub


def list_subscriptions(status: str | None = None) -> list[Subscription]:
    stmt = select(Subscription).order_by(Subscription.id)
    if status:
        stmt = stmt.where(Subscription.status == status)
    return list(db.session.execute(stmt).scalars())


def create_subscription(url: str, events: list[str], description: str | None = None) -> tuple[Subscription, str]:
    """A new active subscription and its secret (shown to the caller this once)."""
    events = _check_events(events)
    _check_url(url)
    secret = signing.new_secret()
    with transaction():
        sub = Subscription(url=url, events=events, description=description, secret=secret, status="active",
                           consecutive_failures=0)
        db.session.add(sub)
    return sub, secret


def update_subscription(subscription_id: int, data: dict) -> Subscription:
    if "events" in data:
        data["events"] = _check_events(data["events"])
    if "url" in data:
        _check_url(data["url"])
    with transaction():
        sub = get_subscription(subscription_id, lock=True)
        for key in ("url", "events", "description"):
            if key in data:
                setattr(sub, key, data[key])
        if data.get("active") is True and sub.status != "active":
            sub.status, sub.disabled_reason, sub.disabled_at = "active", None, None
            sub.consecutive_failures, sub.failing_since = 0, None
        elif data.get("active") is False and sub.status == "active":
            _disable(sub, "disabled by staff", utcnow(), warn=False)
    return sub


def delete_subscription(subscription_id: int) -> None:
    with transaction():
        sub = get_subscription(subscription_id, lock=True)
        ids = select(Delivery.id).where(Delivery.subscription_id == sub.id).scalar_subquery()
        db.session.execute(DeliveryAttempt.__table__.delete().where(DeliveryAttempt.delivery_id.in_(ids)))
        db.session.execute(Delivery.__table__.delete().where(Delivery.subscription_id == sub.id))
        db.session.delete(sub)


def rotate_secret(subscription_id: int, keep_previous_hours: float = 24) -> tuple[Subscription, str]:
    """A new secret; the old one keeps signing too (a second signature) for ``keep_previous_hours``."""
    secret = signing.new_secret()
    with transaction():
        sub = get_subscription(subscription_id, lock=True)
        if keep_previous_hours > 0:
            sub.previous_secret = sub.secret
            sub.previous_secret_expires_at = utcnow() + timedelta(hours=keep_previous_hours)
        else:
            sub.previous_secret, sub.previous_secret_expires_at = None, None
        sub.secret = secret
    return sub, secret


def _secrets(sub_secret: str, previous: str | None, expires: datetime | None, now: datetime) -> list[str]:
    result = [sub_secret]
    if previous and expires and as_utc(expires) > now:
        result.append(previous)
    return result


def _disable(sub: Subscription, reason: str, now: datetime, *, warn: bool = True) -> None:
    sub.status, sub.disabled_reason, sub.disabled_at = "disabled", reason, now
    db.session.execute(update(Delivery).where(Delivery.subscription_id == sub.id, Delivery.status == "pending")
                       .values(status="cancelled").execution_options(synchronize_session=False))
    if warn:
        # staff are told here and in the API (GET /webhooks/subscriptions?status=disabled); no mailer exists yet
        log.warning("webhook subscription %s (%s) disabled: %s; its pending deliveries are cancelled. "
                    "Fix the receiver, then enable it again (PATCH /api/v1/webhooks/subscriptions/%s "
                    "{\"active\": true}) and redeliver what it missed.", sub.id, mask_url(sub.url), redact_text(reason),
                    sub.id)


# --------------------------------------------------------------------------- recording and sending


def webhook_id(event_id: int, subscription_id: int) -> str:
    """Stable across retries and redeliveries: receivers deduplicate on it."""
    return f"msg_{event_id}_{subscription_id}"


def record_event(event: dict, data) -> list[int]:
    """Record a delivery of ``event`` for every matching active subscription, already claimed for
    a first attempt; returns their ids. Safe to call again for the same event. ``data`` (the body's
    ``data``, or a function making it) is only built when a subscription wants the event."""
    hook = event["hook"]
    subs = [(sub_id, events) for sub_id, events in db.session.execute(
        select(Subscription.id, Subscription.events).where(Subscription.status == "active")).all()
        if "*" in (events or []) or hook in (events or [])]
    if not subs:
        return []
    body = json.dumps({"type": hook, "timestamp": event.get("created_at") or utcnow().isoformat(),
                       "data": data() if callable(data) else data},
                      separators=(",", ":"), default=str)
    now = utcnow()
    try:
        with transaction():
            done = set(db.session.execute(select(Delivery.subscription_id).where(
                Delivery.event_id == event["id"], Delivery.subscription_id.in_([s for s, _ in subs]))).scalars())
            rows = [Delivery(subscription_id=sub_id, event_id=event["id"], event_type=hook,
                             webhook_id=webhook_id(event["id"], sub_id), body=body, status="sending", attempts=0,
                             next_attempt_at=now + lease(), created_at=now)
                    for sub_id, _ in subs if sub_id not in done]
            db.session.add_all(rows)
            db.session.flush()
            ids = [row.id for row in rows]
    except IntegrityError:  # a concurrent run of the same event recorded them
        reset_session()
        return []
    return ids


def send(delivery_ids: list[int], now: datetime | None = None, *, manual: bool = False,
         schedule: bool = True) -> None:
    for delivery_id in delivery_ids:
        _attempt(delivery_id, now or utcnow(), manual=manual, schedule=schedule)


def _attempt(delivery_id: int, now: datetime, *, manual: bool, schedule: bool) -> None:
    row = db.session.execute(
        select(Delivery.webhook_id, Delivery.body, Subscription.url, Subscription.secret,
               Subscription.previous_secret, Subscription.previous_secret_expires_at)
        .join(Subscription, Subscription.id == Delivery.subscription_id).where(Delivery.id == delivery_id)).one_or_none()
    end_read()  # end the read: no transaction stays open during the HTTP call
    if row is None:
        return
    msg_id, body, url, secret, previous, expires = row
    payload = body.encode()
    headers = sign_headers(_secrets(secret, previous, expires, utcnow()), payload, msg_id=msg_id)
    result = net.post(url, payload, headers, timeout())
    _record_result(delivery_id, result, now, manual=manual, schedule=schedule)


def _record_result(delivery_id: int, result: net.Result, now: datetime, *, manual: bool, schedule: bool) -> None:
    with transaction():
        delivery = db.session.execute(select(Delivery).where(Delivery.id == delivery_id).with_for_update()
                                      .execution_options(populate_existing=True)).scalar_one_or_none()
        if delivery is None:  # the subscription was deleted meanwhile
            return
        sub = get_subscription(delivery.subscription_id, lock=True)
        delivery.attempts += 1
        db.session.add(DeliveryAttempt(delivery_id=delivery.id, number=delivery.attempts, manual=manual, at=now,
                                       status_code=result.status_code, duration_ms=result.duration_ms,
                                       error=result.error, response=result.response))
        delivery.last_status_code, delivery.last_error = result.status_code, result.error
        delivery.last_duration_ms = result.duration_ms
        if result.ok:
            delivery.status, delivery.delivered_at = "delivered", now
            sub.consecutive_failures, sub.failing_since, sub.last_success_at = 0, None, now
            return
        if delivery.last_error is None:
            delivery.last_error = f"HTTP {result.status_code}"
        sub.consecutive_failures += 1
        sub.failing_since = as_utc(sub.failing_since) or now
        delays = retry_delays()
        if result.status_code == 410:
            delivery.status = "failed"
            if sub.status == "active":
                _disable(sub, f"the receiver answered 410 Gone (delivery {delivery.id})", now)
            return
        if schedule and delivery.attempts <= len(delays):
            spread = jitter()
            delay = delays[delivery.attempts - 1] * random.uniform(1 - spread, 1 + spread)
            delivery.status, delivery.next_attempt_at = "pending", now + timedelta(seconds=delay)
        else:
            delivery.status = "failed"
            if schedule:
                log.warning("webhook delivery %s (%s to %s) failed for good after %s attempts: %s", delivery.id,
                            delivery.event_type, mask_url(sub.url), delivery.attempts,
                            redact_text(delivery.last_error))
        if sub.status == "active" and now - sub.failing_since >= disable_after():
            hours = (now - sub.failing_since).total_seconds() / 3600
            _disable(sub, f"every delivery failed for {hours:.0f} hours ({sub.consecutive_failures} attempts in a "
                          f"row; last: {delivery.last_error})", now)
        if sub.status != "active" and delivery.status == "pending":
            delivery.status = "cancelled"


def claim_due(now: datetime, limit: int = 50) -> list[int]:
    """Claim deliveries whose next attempt is due (or whose sender's lease ran out): a lease each."""
    due = list(db.session.execute(
        select(Delivery.id).join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.status.in_(("pending", "sending")), Delivery.next_attempt_at <= now,
               Subscription.status == "active")
        .order_by(Delivery.next_attempt_at).limit(limit)).scalars())
    end_read()
    if not due:
        return []
    claimed = []
    with transaction():
        for delivery_id in due:
            result = db.session.execute(
                update(Delivery).where(Delivery.id == delivery_id, Delivery.status.in_(("pending", "sending")),
                                       Delivery.next_attempt_at <= now)
                .values(status="sending", next_attempt_at=now + lease())
                .execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append(delivery_id)
    return claimed


def run_due(now: datetime) -> int:
    ids = claim_due(now)
    send(ids, now)
    return len(ids)


# --------------------------------------------------------------------------- the delivery log


def get_delivery(delivery_id: int) -> Delivery:
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery with id {delivery_id}")
    return delivery


def list_deliveries(*, subscription: int | None = None, status: str | None = None, event_type: str | None = None,
                    limit: int = 50, cursor: int | None = None) -> tuple[list[Delivery], int | None]:
    stmt = select(Delivery).order_by(Delivery.id.desc())
    if subscription:
        stmt = stmt.where(Delivery.subscription_id == subscription)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if event_type:
        stmt = stmt.where(Delivery.event_type == event_type)
    return page_by_id(stmt, Delivery.id, limit, cursor)


def redeliver(delivery_id: int) -> Delivery:
    """Send a delivery again now, with the same ``webhook-id`` (one manual attempt; a delivery still
    waiting for a retry keeps its schedule if this attempt fails)."""
    now = utcnow()
    with transaction():
        delivery = db.session.execute(select(Delivery).where(Delivery.id == delivery_id).with_for_update()
                                      .execution_options(populate_existing=True)).scalar_one_or_none()
        if delivery is None:
            raise NotFound(f"no webhook delivery with id {delivery_id}")
        sub = get_subscription(delivery.subscription_id)
        if sub.status != "active":
            raise Conflict(f"subscription {sub.id} is disabled ({sub.disabled_reason}); enable it first",
                           code="subscription_disabled")
        if delivery.status == "sending" and as_utc(delivery.next_attempt_at) > now:
            raise Conflict("this delivery is being sent right now", code="delivery_in_progress")
        schedule = delivery.status == "pending"
        delivery.status, delivery.next_attempt_at = "sending", now + lease()
    _attempt(delivery_id, now, manual=True, schedule=schedule)
    db.session.expire_all()
    return get_delivery(delivery_id)


def counts_by_status(subscription_id: int) -> dict:
    rows = db.session.execute(select(Delivery.status, func.count()).where(Delivery.subscription_id == subscription_id)
                              .group_by(Delivery.status)).all()
    return {status: count for status, count in rows}


# --------------------------------------------------------------------------- answers


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
