"""Mark records dirty in the stage hooks, push every waiting record in Collections upserts of <= 200.

A stage hook calls ``on_order(order_id)``: in one short transaction it builds what Salesforce should hold
for the order, its customer's Contact and (B2B) Account, and stores it on the record's sync row; a row whose
payload did not change since Salesforce accepted it stays ``synced`` (a replayed hook sends nothing). Then,
after the commit and outside any transaction, ``push()`` sends every ``pending`` row, kind after kind
(accounts, contacts, orders: an order refers to its contact by external id), up to ``BATCH`` records per
call. A burst of events therefore goes out in few calls, and the later events of the burst find their
records already synced.

Outcomes: a record Salesforce accepted is ``synced`` (its Salesforce id kept); one it refused for itself is
``error`` (the code and message on the row, shown by the API and the admin; never raised: the order's life
goes on); a call that could not be made (``client.Retryable``) leaves the rows ``pending`` with the reason and
raises ``SyncDeferred``, so the outbox relay retries the stage hook with its back-off. Rows are leased
(``claimed_until``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) while a push sends them: two workers never send
the same row at once. A row whose payload changed while it was being sent stays pending for the next push.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from engine.plugin_api import (
    Customer,
    Order,
    db,
    end_read,
    insert_if_absent,
    is_postgres,
    redact_text,
    transaction,
    utcnow,
)

from . import mapping
from .client import Connection, Outcome, Retryable
from .models import KINDS, SyncRecord
from .settings import Settings, current, state

log = logging.getLogger("hookshop.crm_salesforce")
LEASE = timedelta(minutes=2)
MAX_ROUNDS = 50  # claims one push makes at most (a backfill pushes its own pages)


class SyncDeferred(Exception):
    """Salesforce could not take the records now: they stay pending and the stage hook is retried."""


def connection() -> Connection:
    """The app's client (one login per process, renewed by simple-salesforce when its session expires)."""
    found = state()
    if found.get("connection") is None:
        found["connection"] = Connection(found["settings"])
    return found["connection"]


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --------------------------------------------------------------------------- marking (inside a transaction)


def mark(kind: str, hookshop_id: int, sobject: str, payload: dict) -> bool:
    """Store what Salesforce should hold for a record; True when it now waits for a push."""
    digest, now = fingerprint(payload), utcnow()
    due = now + timedelta(seconds=current().sweep_seconds)
    stmt = select(SyncRecord).where(SyncRecord.kind == kind, SyncRecord.hookshop_id == hookshop_id).with_for_update()
    row = db.session.execute(stmt).scalar_one_or_none()
    if row is None:
        # two workers marking the same new record make one row: the second waits on the first's lock
        insert_if_absent(SyncRecord, {"kind": kind, "hookshop_id": hookshop_id, "sobject": sobject,
                                      "status": "pending", "payload": payload, "payload_hash": digest,
                                      "version": 1, "attempts": 0, "marked_at": now, "next_attempt_at": due,
                                      "created_at": now}, ["kind", "hookshop_id"])
        row = db.session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
    if digest == row.payload_hash and sobject == row.sobject:
        # the same content: synced stays synced (a replay), pending stays pending, error stays error
        return row.status == "pending"
    row.payload, row.payload_hash, row.sobject = payload, digest, sobject
    row.version += 1
    if digest == row.synced_hash:  # back to what Salesforce holds
        row.status, row.error_code, row.last_error = "synced", None, None
        return False
    row.status, row.marked_at, row.next_attempt_at = "pending", now, due
    return True


def mark_customer(settings: Settings, customer: Customer) -> None:
    account = mapping.account_payload(settings, customer)
    if account is not None:
        mark("account", customer.id, "Account", account)
    mark("contact", customer.id, "Contact", mapping.contact_payload(settings, customer))


def mark_order(settings: Settings, order: Order) -> None:
    mark("order", order.id, mapping.sobject(settings, "order"), mapping.order_payload(settings, order))


def on_order(order_id: int) -> dict:
    """A stage hook's work: mark the order and its customer, then push everything pending."""
    settings = current()
    with transaction():
        order = db.session.get(Order, order_id)
        if order is None:
            return {"pushed": 0}
        customer = db.session.get(Customer, order.customer_id)
        if customer is not None:
            mark_customer(settings, customer)
        mark_order(settings, order)
    return push()


# --------------------------------------------------------------------------- pushing (outside transactions)


def _claim(kinds: Iterable[str], limit: int, now: datetime, due_only: bool) -> list[tuple[int, str, str, dict, int]]:
    """Lease up to ``limit`` pending rows of the first kind that has some; (id, kind, sobject, payload, version)."""
    with transaction():
        for kind in kinds:
            stmt = (select(SyncRecord).where(SyncRecord.kind == kind, SyncRecord.status == "pending",
                                             (SyncRecord.claimed_until.is_(None)) | (SyncRecord.claimed_until < now))
                    .order_by(SyncRecord.id).limit(limit))
            if due_only:
                stmt = stmt.where(SyncRecord.next_attempt_at <= now)
            stmt = stmt.with_for_update(skip_locked=True) if is_postgres() else stmt
            rows = list(db.session.execute(stmt).scalars())
            if not rows:
                continue
            for row in rows:
                row.claimed_until = now + LEASE
            return [(row.id, row.kind, row.sobject, dict(row.payload), row.version) for row in rows]
    return []


def _record(claimed: list[tuple[int, str, str, dict, int]], outcomes: list[Outcome] | None,
            deferred: Retryable | None, now: datetime, settings: Settings) -> dict:
    counts = {"synced": 0, "error": 0, "pending": 0}
    with transaction():
        ids = [c[0] for c in claimed]
        rows = {row.id: row for row in db.session.execute(
            select(SyncRecord).where(SyncRecord.id.in_(ids)).with_for_update()
            .execution_options(populate_existing=True)).scalars()}
        for index, (row_id, _kind, _sobject, payload, version) in enumerate(claimed):
            row = rows.get(row_id)
            if row is None:
                continue
            row.claimed_until = None
            row.attempts += 1
            outcome = outcomes[index] if outcomes is not None else None
            if outcome is not None and outcome.salesforce_id:
                row.salesforce_id = outcome.salesforce_id
            if deferred is not None or outcome is None or (not outcome.ok and outcome.retryable):
                code = deferred.code if deferred is not None else (outcome.code if outcome else "UNKNOWN")
                message = deferred.message if deferred is not None else (outcome.message if outcome else "")
                row.error_code, row.last_error = code, f"{code}: {message} (retried)"[:2000]
                row.next_attempt_at = now + timedelta(seconds=settings.sweep_seconds)
                counts["pending"] += 1
                continue
            if row.version != version:  # changed while it was sent: the newer payload waits for the next push
                if outcome.ok:
                    row.synced_hash = fingerprint(payload)
                counts["pending"] += 1
                continue
            if outcome.ok:
                row.status, row.synced_hash, row.synced_at = "synced", row.payload_hash, now
                row.error_code = row.last_error = None
                counts["synced"] += 1
            else:
                row.status, row.error_code = "error", outcome.code
                row.last_error = f"{outcome.code}: {outcome.message}"[:2000]
                counts["error"] += 1
    return counts


def push(*, due_only: bool = False, now: datetime | None = None, max_rounds: int = MAX_ROUNDS) -> dict:
    """Send pending records, kind after kind, ``BATCH`` per Collections call; raises SyncDeferred (after
    recording why on the rows) when Salesforce could not take them now."""
    settings = current()
    summary = {"calls": 0, "synced": 0, "error": 0, "pending": 0}
    end_read()
    for kind in KINDS:
        for _ in range(max_rounds):
            now_ = now or utcnow()
            claimed = _claim([kind], settings.batch, now_, due_only)
            if not claimed:
                break
            sobject = claimed[0][2]
            same = [c for c in claimed if c[2] == sobject]
            others = [c for c in claimed if c[2] != sobject]
            if others:  # ORDER_OBJECT changed between marking and now: those go in a call of their own
                _release(others)
            deferred, outcomes = None, None
            try:
                outcomes = connection().upsert(sobject, settings.external_id, [c[3] for c in same])
                summary["calls"] += 1
            except Retryable as exc:
                deferred = exc
            counts = _record(same, outcomes, deferred, now_, settings)
            for key, value in counts.items():
                summary[key] += value
            if deferred is not None:
                log.warning("crm_salesforce: %d %s records wait: %s", len(same), kind, redact_text(str(deferred)))
                raise SyncDeferred(f"{len(same)} {kind} records wait for Salesforce: {deferred}")
            if len(claimed) < settings.batch:
                break
    return summary


def _release(claimed) -> None:
    with transaction():
        for row in db.session.execute(select(SyncRecord).where(SyncRecord.id.in_([c[0] for c in claimed]))).scalars():
            row.claimed_until = None


def sweep(now: datetime | None = None) -> dict | None:
    """``periodic_tasks``: push the rows still pending ``SWEEP_SECONDS`` after their last attempt (staff's
    retries, records whose stage hook's retries ran out). Never raises: the next sweep tries again."""
    try:
        return push(due_only=True, now=now)
    except SyncDeferred as exc:
        log.info("crm_salesforce sweep deferred: %s", exc)
        return None


def retry(record_id: int) -> SyncRecord | None:
    """Staff's retry of a record: it waits again, due at once for the next sweep (no HTTP call here)."""
    with transaction():
        row = db.session.execute(select(SyncRecord).where(SyncRecord.id == record_id).with_for_update()).scalar_one_or_none()
        if row is None:
            return None
        row.status, row.next_attempt_at = "pending", utcnow()
    return row


def counts() -> dict:
    found = {status: 0 for status in ("pending", "synced", "error")}
    for status, n in db.session.execute(select(SyncRecord.status, func.count()).group_by(SyncRecord.status)):
        found[status] = int(n)
    return found
