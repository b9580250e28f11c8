"""Outbound webhooks: subscriptions, the delivery log, sending and retries.

A stage hook records one ``Delivery`` per matching active subscription (unique per subscription and
outbox event, so a re-run hook records nothing twice) and, in the same transaction, its task on the
core's retry queue (kind ``channel_webhook.delivery``, key: the delivery's id), written claimed by this
process; only after the commit, with no transaction open, is each delivery POSTed. A failed attempt is
retried by the retry queue (the sweeper's ``run_due``) with exponential back-off and jitter
(``CHANNEL_WEBHOOK_RETRY_DELAYS``: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h, 24 h, 24 h,
about three days in all); the queue decides, this module writes each attempt into the delivery log in the
transaction that records the outcome. ``410 Gone`` is a final failure: the task is dead and the
subscription disabled at once; so does a run of failures lasting ``CHANNEL_WEBHOOK_DISABLE_AFTER_HOURS``
(72) without one success, and staff are told (a warning in the log, and the subscription's
``status``/``disabled_reason`` in the API).
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    Conflict,
    Decision,
    NotFound,
    Outcome,
    Task,
    TaskKind,
    ValidationFailed,
    as_utc,
    db,
    discard_tasks,
    end_read,
    enqueue_task,
    failure,
    get_task,
    mask_url,
    page_by_id,
    redact_text,
    reset_session,
    run_held_tasks,
    sign_headers,
    stage_hookspecs,
    success,
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
KIND = "channel_webhook.delivery"  # its retry queue kind (engine.plugin_api.TaskKind)


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
        delivery_ids = list(db.session.execute(select(Delivery.id).where(Delivery.subscription_id == sub.id)).scalars())
        discard_tasks(KIND, [str(i) for i in delivery_ids])
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
    pending = list(db.session.execute(select(Delivery.id).where(Delivery.subscription_id == sub.id,
                                                                Delivery.status == "pending")).scalars())
    if pending:
        db.session.execute(update(Delivery).where(Delivery.id.in_(pending)).values(status="cancelled")
                           .execution_options(synchronize_session=False))
        discard_tasks(KIND, [str(i) for i in pending])  # their retries are cancelled with them
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


def task_kind() -> TaskKind:
    """The plugin's kind on the core's retry queue: one task per delivery (key: the delivery's id)."""
    return TaskKind(name=KIND, handler=_deliver, delays=retry_delays, jitter=jitter, lease=lease, max_batches=50,
                    on_outcome=_on_outcome, on_dead=_on_dead, on_requeue=_on_requeue)


@functools.cache
def _active_subscriptions():
    """Built once per process: every stage hook of every order runs it."""
    return select(Subscription.id, Subscription.events).where(Subscription.status == "active")


def record_event(event: dict, data) -> list[int]:
    """Record a delivery of ``event`` for every matching active subscription, each with its retry task
    already claimed for a first attempt; returns the tasks' ids. Safe to call again for the same event.
    ``data`` (the body's ``data``, or a function making it) is only built when a subscription wants it."""
    hook = event["hook"]
    subs = [(sub_id, events) for sub_id, events in db.session.execute(_active_subscriptions()).all()
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
            ids = [enqueue_task(KIND, str(row.id), {"delivery_id": row.id}, hold=lease()) for row in rows]
    except IntegrityError:  # a concurrent run of the same event recorded them
        reset_session()
        return []
    return [task_id for task_id in ids if task_id is not None]


def send(task_ids: list[int], now: datetime | None = None) -> None:
    """Attempt the deliveries of these tasks now (this process holds them: ``record_event``)."""
    run_held_tasks(task_ids, now)


def _post(delivery_id: int) -> net.Result | None:
    row = db.session.execute(
        select(Delivery.webhook_id, Delivery.body, Subscription.url, Subscription.secret,
               Subscription.previous_secret, Subscription.previous_secret_expires_at)
        .join(Subscription, Subscription.id == Delivery.subscription_id).where(Delivery.id == delivery_id)).one_or_none()
    end_read()  # end the read: no transaction stays open during the HTTP call
    if row is None:
        return None
    msg_id, body, url, secret, previous, expires = row
    payload = body.encode()
    headers = sign_headers(_secrets(secret, previous, expires, utcnow()), payload, msg_id=msg_id)
    return net.post(url, payload, headers, timeout())


def _deliver(tasks: list[Task]) -> list[Outcome]:
    """The kind's handler: POST each delivery; 410 Gone is final (no retry: the subscription is disabled)."""
    outcomes = []
    for task in tasks:
        result = _post(task.payload["delivery_id"])
        if result is None or result.ok:  # None: the subscription was deleted meanwhile
            outcomes.append(success(result))
        else:
            error = result.error or f"HTTP {result.status_code}"
            outcomes.append(failure(error, retry=result.status_code != 410, detail=result))
    return outcomes


def _on_outcome(task: Task, outcome: Outcome, decision: Decision) -> None:
    if outcome.detail is not None:
        _apply(task.payload["delivery_id"], outcome.detail, decision.at, manual=False, decision=decision)


def _on_dead(task: Task, outcome: Outcome) -> None:
    delivery = db.session.get(Delivery, task.payload["delivery_id"])
    sub = db.session.get(Subscription, delivery.subscription_id) if delivery is not None else None
    if delivery is None or sub is None:
        return
    if outcome.detail is not None and outcome.detail.status_code == 410:
        if sub.status == "active":
            _disable(sub, f"the receiver answered 410 Gone (delivery {delivery.id})", utcnow())
        return
    log.warning("webhook delivery %s (%s to %s) failed for good after %s attempts: %s", delivery.id,
                delivery.event_type, mask_url(sub.url), delivery.attempts, redact_text(delivery.last_error))


def _on_requeue(tasks: list[Task]) -> None:
    """``hookshop tasks requeue``: the deliveries are waiting again (of active subscriptions only)."""
    ids = [t.payload["delivery_id"] for t in tasks]
    db.session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status="pending", next_attempt_at=utcnow())
                       .execution_options(synchronize_session=False))


def _apply(delivery_id: int, result: net.Result, now: datetime, *, manual: bool, decision: Decision | None) -> None:
    """Write an attempt into the delivery log, in the caller's transaction. ``decision`` is the retry queue's
    verdict (None for a manual attempt: a waiting delivery keeps its schedule, any other one that fails is
    ``failed``)."""
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
    delivery.last_error = delivery.last_error or f"HTTP {result.status_code}"
    sub.consecutive_failures += 1
    sub.failing_since = as_utc(sub.failing_since) or now
    if decision is not None and decision.status == "pending":
        delivery.status, delivery.next_attempt_at = "pending", decision.next_attempt_at or now
    elif decision is not None or delivery.status != "pending":
        delivery.status = "failed"
    if sub.status == "active" and now - sub.failing_since >= disable_after() and result.status_code != 410:
        hours = (now - sub.failing_since).total_seconds() / 3600
        _disable(sub, f"every delivery failed for {hours:.0f} hours ({sub.consecutive_failures} attempts in a "
                      f"row; last: {delivery.last_error})", now)
    if sub.status != "active" and delivery.status == "pending":
        delivery.status = "cancelled"
        discard_tasks(KIND, [str(delivery.id)])


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
    waiting for a retry keeps its schedule if this attempt fails; one that arrives needs no retry)."""
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
        task = get_task(KIND, str(delivery_id))
        if task is not None and task.status == "running" and task.leased_until is not None and \
                as_utc(task.leased_until) > now:
            raise Conflict("this delivery is being sent right now", code="delivery_in_progress")
    result = _post(delivery_id)
    if result is not None:
        with transaction():
            _apply(delivery_id, result, now, manual=True, decision=None)
            if result.ok:
                discard_tasks(KIND, [str(delivery_id)])  # delivered: its retries (or its dead task) are over
    db.session.expire_all()
    return get_delivery(delivery_id)


def counts_by_status(subscription_id: int) -> dict:
    rows = db.session.execute(select(Delivery.status, func.count()).where(Delivery.subscription_id == subscription_id)
                              .group_by(Delivery.status)).all()
    return {status: count for status, count in rows}


# the API's answers live in answers.py (re-exported: callers use outbound.subscription_out/delivery_out)
from plugins.channel_webhook.answers import delivery_out as delivery_out  # noqa: E402
from plugins.channel_webhook.answers import subscription_out as subscription_out  # noqa: E402
