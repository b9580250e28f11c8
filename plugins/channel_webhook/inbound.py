"""``POST /api/v1/channels/<name>/orders``: a channel's signed order webhook, processed once.

1. The signature is checked on the raw body before anything is parsed; a missing or wrong one (or a
   Standard Webhooks timestamp outside ±5 minutes) is a 401 and nothing is stored.
2. A delivery id already processed answers its first answer again (the inbox).
3. The payload is mapped to ``place_order`` data (the channel's ``sku_map``, its payment settings).
4. The inbox record, the order and the delivery's log row are written in **one** transaction. A
   concurrent twin fails on a unique key at commit and answers what the first one stored; an order
   the channel already sent (same ``external_id``, any delivery id) answers 200 with that order.
5. A refusal (422 malformed, 409 stock, ...) rolls everything back and is then recorded for staff
   (``GET /api/v1/channels/<name>/deliveries?outcome=rejected``) with the payload, minus secrets
   and card data. The sender may retry the same delivery later (after stock arrived, or the
   ``sku_map`` was fixed): only processed deliveries are deduplicated.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.plugin_api import (
    DomainError,
    Order,
    ValidationFailed,
    apply_refund,
    cancel_order,
    change_order_details,
    db,
    end_read,
    find_channel_order,
    get_order,
    inbox_seen,
    order_is_open,
    place_order,
    record_once,
    redact_values,
    registry,
    reset_session,
    transaction,
    utcnow,
)
from engine.plugin_api import redact_text as redact_for_log
from plugins.channel_webhook import channels
from plugins.channel_webhook.models import InboundDelivery
from plugins.channel_webhook.order_data import check_currency, order_data, payload_errors
from plugins.channel_webhook.redact import mask_card_numbers, mask_values, redact, redact_text

log = logging.getLogger("hookshop.channel_webhook")


class ChannelUnavailable(DomainError):
    status = 503
    code = "channel_unavailable"


def error(status: int, code: str, message: str, errors: dict | None = None) -> tuple[dict, int]:
    return {"code": code, "message": message, "errors": errors or {}}, status


def order_out(order: Order) -> dict:
    """What a channel gets back: enough to find the order again."""
    return {"id": order.id, "number": order.number, "status": order.status, "payment_status": order.payment_status,
            "channel": order.channel, "external_id": order.external_id, "currency": order.currency,
            "total": order.total,
            "lines": [{"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                      for line in order.lines]}


def _source(channel_name: str) -> str:
    return f"channel:{channel_name}"


def _payload_for_audit(raw: bytes):
    try:
        return redact(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        return redact_text(raw.decode("utf-8", "replace"))


def receive(name: str, request) -> tuple[dict, int] | tuple[dict, int, dict]:
    channel = channels.get_channel(name)
    fmt = registry().channels.get(channel.format)
    if fmt is None:  # its plugin is disabled (a registered format has verify: engine.contracts.SalesChannel)
        raise ChannelUnavailable(f"the format {channel.format!r} of channel {name!r} is not available "
                                 "(is its plugin disabled?)")
    is_ping = getattr(fmt, "is_ping", None)
    if is_ping is not None and is_ping(request):
        return {"ping": True, "channel": name}, 200
    reason = fmt.verify(request, channels.secrets_of(channel))
    if reason:
        log.warning("channel %s: refused an order webhook: %s", name, reason)
        return error(401, "unauthorized", f"missing or wrong signature: {reason}")
    delivery_id = fmt.delivery_id(request)
    replay = _replay(_source(name), delivery_id)
    if replay is not None:
        return replay
    raw = request.get_data()
    parsed = None
    try:
        parsed = fmt.parse(request)
        if parsed.get("ignore"):
            return _ignored(channel, delivery_id, parsed, raw)
        action = parsed.get("action") or "create"
        if action != "create":
            existing = find_channel_order(name, parsed["external_id"])
            if action == "update" and existing is None and not parsed.get("cancelled"):
                action = "create"  # an update that arrives before (or instead of) the creation
            else:
                return _follow_up(channel, delivery_id, parsed, raw, action, existing)
        data, line_paths = order_data(channel, parsed)
    except ValidationFailed as exc:
        status = 400 if exc.code == "invalid_json" else 422
        return _refuse(channel, delivery_id, parsed, raw, status, exc.code, exc.message, exc.errors, {})
    return _place(channel, delivery_id, parsed, raw, data, line_paths)


def _place(channel, delivery_id: str, parsed: dict, raw: bytes, data: dict, line_paths: list[dict]):
    """The order, its inbox record and its log row in one transaction (a refusal recorded for staff)."""
    name, source = channel.name, _source(channel.name)
    paths = parsed.get("paths") or {}
    extra = {k: v for k, v in (("billing_address", parsed.get("billing_address")), ("note", parsed.get("note")))
             if v}
    try:
        with transaction():
            replay = _replay(source, delivery_id)
            if replay is not None:
                return replay
            check_currency(parsed.get("currency"), data["lines"], paths.get("currency", "currency"))
            order, created = place_order(data)
            body, status = order_out(order), 201 if created else 200
            record_once(source, delivery_id, {"status": status, "body": body})
            _log_delivery(name, delivery_id, parsed.get("topic"), data.get("external_id"), order.id,
                          "created" if created else "existing", status, None, {}, extra, _payload_for_audit(raw))
    except IntegrityError:  # a twin of this delivery (or of this order) committed a moment ago
        reset_session()
        return _after_race(source, delivery_id, name, data.get("external_id"))
    except DomainError as exc:
        reset_session()
        race = _after_race(source, delivery_id, name, data.get("external_id"), reraise=False)
        if race is not None:  # e.g. the twin took the last units, then this one found no stock
            return race
        errors = payload_errors(exc.errors, line_paths, paths)
        return _refuse(channel, delivery_id, parsed, raw, exc.status, exc.code, exc.message, errors, extra)
    if created:
        log.info("channel %s: order %s placed from %s %s", name, body["number"], channel.format,
                 redact_for_log(data["external_id"]))
    return body, status


def _follow_up(channel, delivery_id, parsed, raw, action, order):
    """An update, cancellation or refund of an order the channel sent before, through the core's
    services (each idempotent: a cancelled order is not cancelled again, a refund is recorded once per
    platform refund id); then the delivery is recorded as processed."""
    name = channel.name
    if order is None:
        parsed = {**parsed, "ignore": f"no order {parsed.get('external_id')} from {name} here: nothing to {action}"}
        return _ignored(channel, delivery_id, parsed, raw)
    outcome = "unchanged"
    try:
        if action in ("cancel", "update") and (action == "cancel" or parsed.get("cancelled")):
            if order.status != "cancelled":
                cancel_order(order.id, f"cancelled on {name}")
                outcome = "cancelled"
        elif action == "refund":
            outcome = _refund(channel, order, parsed)
        elif action == "update":
            outcome = _update(channel, order, parsed)
    except DomainError as exc:
        reset_session()
        return _refuse(channel, delivery_id, parsed, raw, exc.status, exc.code, exc.message, exc.errors, {})
    order = get_order(order.id)
    body, status = {**order_out(order), "outcome": outcome}, 200
    with transaction():
        if _replay(_source(name), delivery_id) is None:
            record_once(_source(name), delivery_id, {"status": status, "body": body})
        _log_delivery(name, delivery_id, parsed.get("topic"), order.external_id, order.id, "existing", status,
                      f"{action}: {outcome}", {}, {}, _payload_for_audit(raw))
    return body, status


def _refund(channel, order, parsed) -> str:
    """A refund made on the platform, recorded with the core's payments service (once per refund id)."""
    from engine.plugin_api import RefundOutcome

    order = get_order(order.id)  # as it stands now (an earlier refund of this delivery counted)
    amount = int(parsed.get("refund_amount") or 0)
    payment = next((p for p in order.payments if p.status in ("paid", "partially_refunded")), None)
    reference = f"{channel.name}:refund:{parsed.get('refund_id')}"
    if any(r.reference == reference for r in order.refunds):
        return "already refunded"
    if amount <= 0 or payment is None:
        return "nothing to refund"
    if order.paid_total - order.refunded_total <= 0:
        return "already refunded"
    # capped at what is left under the order's lock, by the core
    apply_refund(order.id, payment.id, RefundOutcome(amount=amount, reference=reference),
                          reason=parsed.get("note") or f"refunded on {channel.name}")
    return "refunded"


def _update(channel, order, parsed) -> str:
    """``orders/updated``, ``order.updated``: refunds the platform lists are recorded (once each); before
    shipping, the shipping address, e-mail, phone and note change through the core's service (idempotent:
    an update that changes nothing records nothing). Lines and prices are the platform's business after
    placement: they are not changed here."""
    refunded = []
    for item in parsed.get("refunds") or []:
        refunded.append(_refund(channel, order, {"refund_amount": item["amount"], "refund_id": item["id"],
                                                 "note": item.get("note")}))
    if parsed.get("refunded") and not parsed.get("refunds"):  # refunded in full, without the refund's id
        due = order.paid_total - order.refunded_total
        refunded.append(_refund(channel, order, {"refund_amount": due, "refund_id": f"order-{order.external_id}",
                                                 "note": f"refunded on {channel.name}"}))
    changed: list[str] = []
    current = get_order(order.id)
    if order_is_open(current.status):
        customer = parsed.get("customer") or {}
        changes = {"email": customer.get("email"), "phone": customer.get("phone")}
        if customer.get("shipping_address"):
            changes["shipping_address"] = customer["shipping_address"]
        if parsed.get("note"):
            changes["note"] = mask_card_numbers(parsed["note"])
        _, changed = change_order_details(order.id, changes, source=f"channel {channel.name}", lenient=True)
    if changed:
        return "updated: " + ", ".join(changed) + (" (refunded)" if "refunded" in refunded else "")
    return "refunded" if "refunded" in refunded else "unchanged"


def _replay(source: str, delivery_id: str):
    record = inbox_seen(source, delivery_id)
    if record is None:
        return None
    stored = record.response or {}
    return stored.get("body", {}), stored.get("status", 200), {"Webhook-Replayed": "true"}


def _after_race(source, delivery_id, name, external_id, reraise=True):
    replay = _replay(source, delivery_id)
    if replay is not None:
        return replay
    existing = find_channel_order(name, external_id) if external_id is not None else None
    if existing is not None:
        return order_out(existing), 200
    end_read()
    if reraise:
        raise
    return None


def _ignored(channel, delivery_id: str, parsed: dict, raw: bytes):
    body = {"ignored": True, "reason": parsed["ignore"], "channel": channel.name}
    _record_refusal(channel.name, delivery_id, parsed, raw, "ignored", 200, parsed["ignore"], {}, {})
    return body, 200


def _refuse(channel, delivery_id, parsed, raw, status, code, message, errors, extra):
    log.warning("channel %s: refused delivery %s (%s): %s %s", channel.name, redact_for_log(delivery_id),
                status, redact_for_log(message), redact_values(errors))
    _record_refusal(channel.name, delivery_id, parsed, raw, "rejected", status, message, errors, extra,
                    code=code)
    return error(status, code, message, errors)


def _record_refusal(name, delivery_id, parsed, raw, outcome, status, reason, errors, extra, code=None):
    external_id = (parsed or {}).get("external_id") or _external_id_guess(raw)
    for _ in range(2):
        try:
            with transaction():
                _log_delivery(name, delivery_id, (parsed or {}).get("topic"), external_id, None, outcome, status,
                              f"{code}: {reason}" if code else reason, errors, extra, _payload_for_audit(raw))
            return
        except IntegrityError:  # a twin recorded the same delivery a moment ago: update it
            reset_session()


def _external_id_guess(raw: bytes) -> str | None:
    """The channel's order id of a payload that could not be mapped (for reconciliation)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("data"), dict) and "type" in data:
        data = data["data"]
    if isinstance(data, dict) and set(data) == {"order"} and isinstance(data["order"], dict):
        data = data["order"]  # a wrapped REST-style body
    if isinstance(data, dict) and "order_id" in data and "transactions" in data:
        data = {"id": data["order_id"]}  # a Shopify refund
    if isinstance(data, dict):
        value = data.get("external_id", data.get("id"))
        if isinstance(value, (int, str)) and not isinstance(value, bool) and 0 < len(str(value)) <= 128:
            return str(value)
    return None


def _log_delivery(name, delivery_id, topic, external_id, order_id, outcome, status, reason, errors, extra, payload):
    row = db.session.execute(select(InboundDelivery).where(
        InboundDelivery.channel == name, InboundDelivery.delivery_id == delivery_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    now = utcnow()
    errors, extra = mask_values(errors or {}), mask_values(extra or {})  # messages may quote what was sent
    reason = mask_card_numbers(reason) if reason else reason
    if row is None:
        db.session.add(InboundDelivery(channel=name, delivery_id=delivery_id, topic=topic, external_id=external_id,
                                       order_id=order_id, outcome=outcome, status_code=status, reason=reason,
                                       errors=errors or {}, extra=extra or {}, payload=payload, attempts=1,
                                       first_seen_at=now, last_seen_at=now))
        return
    if row.outcome in ("created", "existing") and outcome not in ("created", "existing"):
        return  # never overwrite what was processed
    row.attempts += 1
    row.last_seen_at = now
    row.topic, row.external_id, row.order_id = topic or row.topic, external_id or row.external_id, order_id
    row.outcome, row.status_code, row.reason = outcome, status, reason
    row.errors, row.extra, row.payload = errors or {}, extra or row.extra or {}, payload
