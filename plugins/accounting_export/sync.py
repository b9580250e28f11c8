"""Sync to a cloud accounting endpoint: entries pushed in batches, each once, retried with back-off.

Every entry gets a sync row when it is posted (``pending``) and, in the same transaction, a task on the
core's retry queue (kind ``accounting_export.sync``, key: the entry's id). The queue (the sweeper's
``run_due``, and ``push_due`` for ``hookshop accounting sync``) claims up to ``SYNC_BATCH`` due tasks
with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction serializes) and calls
``push``, which sends them in one ``POST`` outside any transaction; the queue's outcome function decides
what comes next and ``_on_outcome`` mirrors it on the sync row, in the same transaction:

* a 2xx answer: every entry of the batch is ``synced``, except those the endpoint lists in
  ``{"rejected": {"<idempotency key>": "<reason>"}}``, which become ``rejected`` (not retried);
* anything else (an error status, a timeout, a refused connection): the batch is retried after the
  next delay of ``SYNC_RETRY_DELAYS`` (a failed batch ends the round: the endpoint is unwell); when they
  run out its entries become ``failed`` and their tasks dead (``hookshop accounting sync --retry-failed``,
  or ``hookshop tasks requeue --kind accounting_export.sync``, queues them again).

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
from contextvars import ContextVar
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from engine.plugin_api import (
    Client,
    Decision,
    OutboundError,
    Outcome,
    TargetRefused,
    Task,
    TaskKind,
    amount_text,
    as_utc,
    db,
    end_read,
    failure,
    redact_text,
    requeue_tasks,
    run_due_tasks,
    sign_headers,
    success,
    transaction,
    utcnow,
)

from .models import JournalEntry, Posting, SyncState
from .settings import Settings, current

log = logging.getLogger("hookshop.accounting_export")
LEASE = timedelta(minutes=5)
KIND = "accounting_export.sync"  # its retry queue kind (engine.plugin_api.TaskKind)
_summary: ContextVar[dict | None] = ContextVar("accounting_sync_summary", default=None)  # push_due's counts
STATUSES = ("pending", "synced", "failed", "rejected")


def task_kind() -> TaskKind:
    """The plugin's kind on the core's retry queue: batches of ``SYNC_BATCH`` entries, off while the sync is."""
    return TaskKind(name=KIND, handler=push, delays=lambda: current().sync_delays, batch=lambda: current().sync_batch,
                    lease=LEASE, stop_on_failure=True, enabled=lambda: current().sync_enabled,
                    on_outcome=_on_outcome, on_requeue=_on_requeue)


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
    message. No retry here: the retry queue schedules the next attempt."""
    if not settings.sync_url or not settings.sync_secret:
        return False, "HOOKSHOP_ACCOUNTING_SYNC_URL and HOOKSHOP_ACCOUNTING_SYNC_SECRET must both be set"
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


def push(tasks: list[Task]) -> list[Outcome]:
    """The kind's handler: one signed POST of the batch; an entry the endpoint rejects is a final failure."""
    settings = current()
    ids = [int(t.payload["entry_id"]) for t in tasks]
    keys = dict(db.session.execute(select(JournalEntry.id, JournalEntry.uid).where(JournalEntry.id.in_(ids))).all())
    ok, answer = send(settings, json.dumps(payload(ids), separators=(",", ":")).encode())
    summary = _summary.get()
    if summary is not None:
        summary["batches"] += 1
    if not ok:
        log.warning("accounting sync of %d entries failed: %s", len(ids), redact_text(answer))
        if summary is not None:
            summary["failed_batches"] += 1
        return [failure(str(answer)[:2000]) for _ in ids]
    rejected = (answer.get("rejected") or {}) if isinstance(answer, dict) else {}
    outcomes = [failure(str(rejected[keys[i]])[:2000], retry=False, detail="rejected") if keys.get(i) in rejected
                else success() for i in ids]
    if summary is not None:
        summary["synced"] += sum(1 for o in outcomes if o.ok)
    return outcomes


def _on_outcome(task: Task, outcome: Outcome, decision: Decision) -> None:
    """Mirror the queue's decision on the entry's sync row (the API and ``hookshop accounting`` show it)."""
    row = db.session.get(SyncState, int(task.payload["entry_id"]), with_for_update=True, populate_existing=True)
    if row is None:
        return
    row.attempts = task.attempts
    if outcome.ok:
        row.status, row.synced_at, row.last_error = "synced", decision.at, None
    elif outcome.detail == "rejected":
        row.status, row.last_error = "rejected", outcome.error
    else:
        row.last_error = outcome.error
        if decision.status == "pending":
            row.next_attempt_at = decision.next_attempt_at or decision.at
        else:
            row.status = "failed"


def _on_requeue(tasks: list[Task]) -> None:
    ids = [int(t.payload["entry_id"]) for t in tasks]
    db.session.execute(update(SyncState).where(SyncState.entry_id.in_(ids))
                       .values(status="pending", attempts=0, next_attempt_at=utcnow())
                       .execution_options(synchronize_session=False))


def push_due(now: datetime | None = None) -> dict:
    """Send due entries now, batch after batch (``hookshop accounting sync``); returns what happened."""
    settings = current()
    summary = {"enabled": settings.sync_enabled, "batches": 0, "synced": 0, "failed_batches": 0}
    if not settings.sync_enabled:
        return summary
    token = _summary.set(summary)
    try:
        run_due_tasks(now or utcnow(), kinds=[KIND])
    finally:
        _summary.reset(token)
    return summary


def retry_failed() -> int:
    """Queue the entries whose retries ran out again (not the rejected ones)."""
    with transaction():
        ids = list(db.session.execute(select(SyncState.entry_id).where(SyncState.status == "failed")).scalars())
        return requeue_tasks(kind=KIND, keys=[str(i) for i in ids]) if ids else 0


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
