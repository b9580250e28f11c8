"""Sync to a cloud accounting endpoint: entries pushed in batches, each once, retried with back-off.

Every entry gets a sync row when it is posted (``pending``). ``push_due(now)`` (called by
``periodic_tasks``, and by ``hookshop accounting sync``) claims up to ``SYNC_BATCH`` due rows with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction serializes), sends them
in one ``POST`` outside any transaction, then records the outcome:

* a 2xx answer: every entry of the batch is ``synced``, except those the endpoint lists in
  ``{"rejected": {"<idempotency key>": "<reason>"}}``, which become ``rejected`` (not retried);
* anything else (an error status, a timeout, a refused connection): the batch is retried after the
  next delay of ``SYNC_RETRY_DELAYS``; when they run out its entries become ``failed``
  (``hookshop accounting sync --retry-failed`` queues them again).

Each entry carries its ``idempotency_key`` (the entry's ``uid``), stable across retries: an endpoint
that keeps the keys it accepted never books an entry twice, even when an answer was lost and the batch
is sent again. The request is signed with Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; the key is ``SYNC_SECRET``, a
``whsec_<base64>`` secret or any text as its UTF-8 bytes), so a receiver that checks the timestamp
refuses a replayed request. It goes out through the core's outbound client (``engine.outbound``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from engine.plugin_api import (
    Client,
    OutboundError,
    TargetRefused,
    amount_text,
    as_utc,
    db,
    end_read,
    is_postgres,
    redact_text,
    sign_headers,
    transaction,
    utcnow,
)

from .models import JournalEntry, Posting, SyncState
from .settings import Settings, current

log = logging.getLogger("hookshop.accounting_export")
LEASE = timedelta(minutes=5)
STATUSES = ("pending", "synced", "failed", "rejected")


def claim(now: datetime, batch: int) -> list[int]:
    """Lease up to ``batch`` due entries (their next attempt moves past the lease)."""
    with transaction():
        stmt = (select(SyncState.entry_id).where(SyncState.status == "pending", SyncState.next_attempt_at <= now)
                .order_by(SyncState.entry_id).limit(batch))
        if is_postgres():
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(db.session.execute(stmt).scalars())
        if ids:
            db.session.execute(update(SyncState).where(SyncState.entry_id.in_(ids))
                               .values(next_attempt_at=now + LEASE).execution_options(synchronize_session=False))
    return ids


def payload(entry_ids: list[int]) -> dict:
    entries = {e.id: e for e in db.session.execute(select(JournalEntry).where(JournalEntry.id.in_(entry_ids))).scalars()}
    postings: dict[int, list] = {}
    for p in db.session.execute(select(Posting).where(Posting.entry_id.in_(entry_ids))
                                .order_by(Posting.entry_id, Posting.line_no)).scalars():
        postings.setdefault(p.entry_id, []).append({
            "account": p.account, "role": p.role, "amount": p.amount, "amount_text": amount_text(p.amount, p.currency),
            "currency": p.currency, "tax_rate": p.tax_rate, "sku": p.sku, "quantity": p.quantity, "memo": p.memo})
    end_read()
    return {"entries": [{
        "idempotency_key": e.uid, "id": e.id, "date": e.booking_date.isoformat(), "kind": e.kind,
        "order": e.order_number, "channel": e.channel, "payee": e.payee, "description": e.description,
        "postings": postings.get(e.id, [])} for e in (entries[i] for i in entry_ids if i in entries)]}


def sync_key(secret: str) -> str | bytes:
    """The Standard Webhooks key of ``SYNC_SECRET``: a ``whsec_<base64>`` secret as such, any other text
    as its UTF-8 bytes (so a secret set before the sync was signed this way keeps working)."""
    return secret if secret.startswith("whsec_") else secret.encode()


def send(settings: Settings, body: bytes) -> tuple[bool, dict | str]:
    """POST the batch, signed with Standard Webhooks headers; ``(True, answer)`` on a 2xx, ``(False,
    error text)`` otherwise. Its ``webhook-id`` is the body's digest: a batch sent again is the same
    message. No retry here: ``record`` schedules the next attempt."""
    msg_id = "msg_" + hashlib.sha256(body).hexdigest()[:32]
    try:
        headers = sign_headers([sync_key(settings.sync_secret)], body, msg_id=msg_id)
    except ValueError as exc:
        return False, f"HOOKSHOP_ACCOUNTING_SYNC_SECRET cannot sign: {exc}"
    client = Client(timeout=settings.sync_timeout, guard=False, user_agent="hookshop-accounting-export")
    try:
        answer = client.post(settings.sync_url, body=body, headers={"Content-Type": "application/json", **headers})
    except OutboundError as exc:
        return False, exc.reason
    except TargetRefused as exc:
        return False, f"HOOKSHOP_ACCOUNTING_SYNC_URL cannot be called: {exc}"
    if not answer.ok:
        return False, f"HTTP {answer.status_code}: {answer.content[:300].decode(errors='replace')}"
    try:
        data = answer.json()
    except ValueError:
        data = {}
    return True, data if isinstance(data, dict) else {}


def record(entry_ids: list[int], ok: bool, answer, now: datetime, settings: Settings) -> None:
    with transaction():
        rows = list(db.session.execute(select(SyncState).where(SyncState.entry_id.in_(entry_ids))
                                       .with_for_update().execution_options(populate_existing=True)).scalars())
        keys = dict(db.session.execute(select(JournalEntry.id, JournalEntry.uid)
                                       .where(JournalEntry.id.in_(entry_ids))).all())
        rejected = (answer.get("rejected") or {}) if ok else {}
        for row in rows:
            if row.status != "pending":
                continue
            row.attempts += 1
            if ok and keys.get(row.entry_id) in rejected:
                row.status, row.last_error = "rejected", str(rejected[keys[row.entry_id]])[:2000]
            elif ok:
                row.status, row.synced_at, row.last_error = "synced", now, None
            else:
                row.last_error = str(answer)[:2000]
                if row.attempts > len(settings.sync_delays):
                    row.status = "failed"
                else:
                    row.next_attempt_at = now + timedelta(seconds=settings.sync_delays[row.attempts - 1])


def push_due(now: datetime | None = None, max_batches: int = 20) -> dict:
    """Send due entries, one batch after the other; returns what happened (for logs and the CLI)."""
    settings = current()
    summary = {"enabled": settings.sync_enabled, "batches": 0, "synced": 0, "failed_batches": 0}
    if not settings.sync_enabled:
        return summary
    now = now or utcnow()
    for _ in range(max_batches):
        ids = claim(now, settings.sync_batch)
        if not ids:
            break
        body = json.dumps(payload(ids), separators=(",", ":")).encode()
        ok, answer = send(settings, body)
        record(ids, ok, answer, now, settings)
        summary["batches"] += 1
        if ok:
            summary["synced"] += len(ids) - len((answer or {}).get("rejected") or {})
        else:
            summary["failed_batches"] += 1
            log.warning("accounting sync of %d entries failed: %s", len(ids), redact_text(answer))
            break  # the endpoint is unwell: the back-off decides when to try again
    return summary


def retry_failed() -> int:
    with transaction():
        result = db.session.execute(update(SyncState).where(SyncState.status == "failed")
                                    .values(status="pending", attempts=0, next_attempt_at=utcnow())
                                    .execution_options(synchronize_session=False))
    return result.rowcount


def status() -> dict:
    settings = current()
    counts = dict.fromkeys(STATUSES, 0)
    for state, n in db.session.execute(select(SyncState.status, func.count()).group_by(SyncState.status)):
        counts[state] = int(n)
    next_at = db.session.execute(select(func.min(SyncState.next_attempt_at))
                                 .where(SyncState.status == "pending")).scalar()
    last_error = db.session.execute(select(SyncState.last_error).where(SyncState.last_error.is_not(None))
                                    .order_by(SyncState.entry_id.desc()).limit(1)).scalar()
    reason = None
    if not settings.sync_url:
        reason = "HOOKSHOP_ACCOUNTING_SYNC_URL is not set: entries stay pending"
    elif not settings.sync_secret:
        reason = "HOOKSHOP_ACCOUNTING_SYNC_SECRET is not set: nothing is sent"
    return {"enabled": settings.sync_enabled, "reason": reason, "url": settings.sync_url, "counts": counts,
            "next_attempt_at": as_utc(next_at).isoformat() if next_at else None, "last_error": last_error}
