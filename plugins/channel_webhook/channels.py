"""Sales channels: configuration, secrets, the inbound log, sales by channel and reconciliation."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select

from engine.plugin_api import (
    Conflict,
    NotFound,
    Order,
    ValidationFailed,
    as_utc,
    db,
    page_by_id,
    registry,
    transaction,
    utcnow,
)
from plugins.channel_webhook import signing
from plugins.channel_webhook.models import Channel, InboundDelivery

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
RESERVED = {"api", "admin", "sales"}  # "api": the channel of orders placed through POST /orders
PAYMENT_STATUSES = ("auto", "paid", "unpaid")
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")


def get_channel(name: str, *, lock: bool = False) -> Channel:
    stmt = select(Channel).where(Channel.name == name)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    channel = db.session.execute(stmt).scalar_one_or_none()
    if channel is None:
        raise NotFound(f"no sales channel named {name!r} (configure it with POST /api/v1/channels)")
    return channel


def list_channels() -> list[Channel]:
    return list(db.session.execute(select(Channel).order_by(Channel.name)).scalars())


def _format(name: str):
    fmt = registry().channels.get(name)
    if fmt is None:  # every registered format has verify (engine.contracts.SalesChannel, checked at start-up)
        known = sorted(registry().channels)
        raise ValidationFailed(f"unknown channel format {name!r}",
                               errors={"format": [f"one of: {', '.join(known)}"]})
    return fmt


def _check_secret(fmt, secret: str | None, field: str = "secret") -> str | None:
    """The secret to store, or None when one must be generated."""
    if secret is None:
        if getattr(fmt, "generates_secret", False):
            return None
        raise ValidationFailed("a signing secret is required", errors={field: [
            f"required for {fmt.name}: the secret the platform signs its webhooks with"]})
    checker = getattr(fmt, "check_secret", None)
    reason = checker(secret) if checker else None
    if reason:
        raise ValidationFailed("the secret is not valid", errors={field: [reason]})
    return secret


def _check_sku_map(sku_map: dict) -> dict:
    errors = {}
    for key, value in sku_map.items():
        if not isinstance(value, str) or not SKU.match(value) or len(value) > 64:
            errors[key] = ["our sku: letters, digits and . _ - / only, at most 64 characters"]
        elif not key or len(key) > 128:
            errors[key] = ["the channel's sku or id: 1 to 128 characters"]
    if errors:
        raise ValidationFailed("the sku map is not valid", errors={"sku_map": errors})
    return {str(k): v for k, v in sku_map.items()}


def _check_provider(provider: str) -> str:
    if provider not in registry().providers:
        raise ValidationFailed("unknown payment provider", errors={"payment_provider": [
            f"unknown payment provider {provider!r}; known: {', '.join(sorted(registry().providers))}"]})
    return provider


def create_channel(data: dict) -> tuple[Channel, str | None]:
    """Returns the channel and the generated secret (None when the caller gave one)."""
    name = data["name"]
    if not NAME.match(name) or name in RESERVED:
        raise ValidationFailed("the channel name is not valid", errors={"name": [
            "lower-case letters, digits, - and _ (at most 48), not api, admin or sales"]})
    fmt = _format(data["format"])
    secret = _check_secret(fmt, data.get("secret"))
    generated = None
    if secret is None:
        secret = generated = signing.new_secret()
    sku_map = _check_sku_map(data.get("sku_map") or {})
    provider = _check_provider(data.get("payment_provider") or "manual")
    with transaction():
        if db.session.execute(select(Channel.id).where(Channel.name == name)).first():
            raise Conflict(f"a channel named {name!r} exists", code="duplicate_channel")
        channel = Channel(name=name, format=fmt.name, secret=secret, sku_map=sku_map, payment_provider=provider,
                          payment_status=data.get("payment_status") or "auto")
        db.session.add(channel)
    return channel, generated


def update_channel(name: str, data: dict) -> Channel:
    if "sku_map" in data:
        data["sku_map"] = _check_sku_map(data["sku_map"] or {})
    if "payment_provider" in data:
        _check_provider(data["payment_provider"])
    with transaction():
        channel = get_channel(name, lock=True)
        for key in ("sku_map", "payment_provider", "payment_status"):
            if key in data:
                setattr(channel, key, data[key])
    return channel


def rotate_secret(name: str, secret: str | None, keep_previous_hours: float) -> tuple[Channel, str | None]:
    """The new secret signs from now on; the old one is still accepted for ``keep_previous_hours``."""
    channel = get_channel(name)
    fmt = _format(channel.format)
    secret = _check_secret(fmt, secret)
    generated = None
    if secret is None:
        secret = generated = signing.new_secret()
    with transaction():
        channel = get_channel(name, lock=True)
        if keep_previous_hours > 0:
            channel.previous_secret = channel.secret
            channel.previous_secret_expires_at = utcnow() + timedelta(hours=keep_previous_hours)
        else:
            channel.previous_secret, channel.previous_secret_expires_at = None, None
        channel.secret = secret
    return channel, generated


def secrets_of(channel: Channel, now: datetime | None = None) -> list[str]:
    result = [channel.secret]
    expires = as_utc(channel.previous_secret_expires_at)
    if channel.previous_secret and expires and expires > (now or utcnow()):
        result.append(channel.previous_secret)
    return result


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def channel_out(channel: Channel, secret: str | None = None) -> dict:
    rejected = db.session.execute(select(func.count()).select_from(InboundDelivery).where(
        InboundDelivery.channel == channel.name, InboundDelivery.outcome == "rejected")).scalar_one()
    expires = as_utc(channel.previous_secret_expires_at)
    data = {"name": channel.name, "format": channel.format, "webhook_path": f"/api/v1/channels/{channel.name}/orders",
            "sku_map": dict(channel.sku_map or {}), "payment_provider": channel.payment_provider,
            "payment_status": channel.payment_status,
            "previous_secret_expires_at": _iso(expires) if channel.previous_secret and expires
            and expires > utcnow() else None,
            "rejected_deliveries": rejected, "created_at": _iso(channel.created_at)}
    if secret is not None:
        data["secret"] = secret
    return data


# --------------------------------------------------------------------------- inbound log


def list_inbound(name: str, outcome: str | None = None, limit: int = 50,
                 cursor: int | None = None) -> tuple[list[InboundDelivery], int | None]:
    get_channel(name)
    stmt = select(InboundDelivery).where(InboundDelivery.channel == name).order_by(InboundDelivery.id.desc())
    if outcome:
        stmt = stmt.where(InboundDelivery.outcome == outcome)
    return page_by_id(stmt, InboundDelivery.id, limit, cursor)


def inbound_out(row: InboundDelivery) -> dict:
    return {"id": row.id, "channel": row.channel, "delivery_id": row.delivery_id, "topic": row.topic,
            "external_id": row.external_id, "order_id": row.order_id, "outcome": row.outcome,
            "status_code": row.status_code, "reason": row.reason, "errors": row.errors or {},
            "extra": row.extra or {}, "payload": row.payload, "attempts": row.attempts,
            "first_seen_at": _iso(row.first_seen_at), "last_seen_at": _iso(row.last_seen_at)}


# --------------------------------------------------------------------------- sales by channel


def sales_by_channel(since: date, until: date, channel: str | None = None) -> list[dict]:
    """Per day (UTC, by placement), channel and currency: orders placed (cancelled ones apart),
    their revenue (totals), what was refunded on them, and the net."""
    if until < since:
        raise ValidationFailed("until is before since", errors={"until": ["must not be before since"]})
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    if db.session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone("UTC", Order.created_at))
    else:
        day = func.date(Order.created_at)  # SQLite keeps UTC times without an offset
    live = Order.status != "cancelled"
    stmt = (select(day.label("day"), Order.channel, Order.currency,
                   func.sum(case((live, 1), else_=0)), func.sum(case((live, Order.total), else_=0)),
                   func.sum(case((live, Order.refunded_total), else_=0)),
                   func.sum(case((live, 0), else_=1)))
            .where(Order.created_at >= start, Order.created_at < end)
            .group_by(day, Order.channel, Order.currency).order_by(day, Order.channel, Order.currency))
    if channel:
        stmt = stmt.where(Order.channel == channel)
    items = []
    for row_day, row_channel, currency, orders, revenue, refunded, cancelled in db.session.execute(stmt).all():
        items.append({"date": str(row_day)[:10], "channel": row_channel, "currency": currency, "orders": int(orders),
                      "revenue": int(revenue), "refunded": int(refunded), "net_revenue": int(revenue) - int(refunded),
                      "cancelled": int(cancelled)})
    return items


# --------------------------------------------------------------------------- reconciliation

ID_FIELDS = ("id", "external_id", "order_id", "order id")
INFO_FIELDS = {"number": ("name", "number", "order_number", "order number"),
               "created_at": ("created_at", "created at", "date_created", "order date", "date"),
               "total": ("total", "total_price", "order total"),
               "email": ("email", "billing email", "customer email"),
               "status": ("status", "financial_status", "financial status")}


def _pick(record: dict, names) -> object:
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    for name in names:
        value = lowered.get(name)
        if value not in (None, ""):
            return value
    return None


def read_export(content: str, id_field: str | None = None) -> list[tuple[str, dict]]:
    """``[(external_id, info)]`` from a channel's export: JSON (a list of orders, or an object with an
    ``orders`` list) or CSV (one row per order, or Shopify's one row per line item)."""
    names = (id_field.strip().lower(),) if id_field else ID_FIELDS
    stripped = content.lstrip("\ufeff").lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise ValidationFailed(f"the export is not valid JSON: {exc}", errors={"file": [str(exc)]}) from exc
        if isinstance(data, dict):
            data = data.get("orders", data.get("items", data.get("data")))
        if not isinstance(data, list):
            raise ValidationFailed("a JSON export is a list of orders (or {\"orders\": [...]})",
                                   errors={"file": ["no list of orders found"]})
        records = [item if isinstance(item, dict) else {"id": item} for item in data]
    else:
        reader = csv.DictReader(io.StringIO(stripped))
        if not reader.fieldnames or not any(str(f).strip().lower() in names for f in reader.fieldnames):
            raise ValidationFailed("the CSV export has no order id column", errors={"file": [
                f"expected a column named one of: {', '.join(names)} (or pass --id-column)"]})
        # rows without an id continue the order above (Shopify: one row per line item)
        records = [row for row in reader if _pick(row, names) is not None]
    found: dict[str, dict] = {}
    for index, record in enumerate(records):
        value = _pick(record, names)
        if value is None:
            raise ValidationFailed(f"order {index + 1} of the export has no id",
                                   errors={"file": [f"record {index + 1}: no {' / '.join(names)}"]})
        key = str(value).strip()
        if key not in found:
            found[key] = {k: v for k, names_ in INFO_FIELDS.items() if (v := _pick(record, names_)) is not None}
    return list(found.items())


def _refusal(row: InboundDelivery | None) -> str | None:
    if row is None:
        return None
    return f"{row.outcome} ({row.status_code}): {row.reason}"


def reconcile(name: str, content: str, id_field: str | None = None) -> dict:
    """The orders of the export that are not here, with the last refusal of each (if one was recorded)."""
    get_channel(name)
    exported = read_export(content, id_field)
    ids = [external_id for external_id, _ in exported]
    present: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        present |= {external_id for external_id in db.session.execute(select(Order.external_id).where(
            Order.channel == name, Order.external_id.in_(chunk))).scalars() if external_id is not None}
    missing = [(external_id, info) for external_id, info in exported if external_id not in present]
    refusals: dict[str, InboundDelivery] = {}
    missing_ids = [m for m, _ in missing]
    for start in range(0, len(missing_ids), 500):
        for row in db.session.execute(select(InboundDelivery).where(
                InboundDelivery.channel == name, InboundDelivery.external_id.in_(missing_ids[start:start + 500]))
                .order_by(InboundDelivery.id)).scalars():
            if row.external_id is not None:
                refusals[row.external_id] = row
    return {"channel": name, "exported": len(exported), "present": len(exported) - len(missing),
            "missing": [{"external_id": external_id, **info,
                         "last_refusal": _refusal(refusals.get(external_id))}
                        for external_id, info in missing]}
