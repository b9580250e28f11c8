"""``hookshop crm sync --since DATE`` (backfill, resumable) and ``hookshop crm pull`` (VIP flags back).

The backfill walks the customers, then the orders, changed since the date, in id order and pages of
``BATCH``: it marks a page (as the stage hooks do) and pushes it, then stores its checkpoint (``since``, the
kind, the last id done). Run again with the same ``--since`` after an interruption (Ctrl-C, Salesforce
unavailable) and it continues after the last page Salesforce took; ``--restart`` starts over. Records already
synced with the same content send nothing.

The pull reads the Contacts that changed since the last pull (a SOQL query on ``LastModifiedDate``) and puts
each one's VIP flag (``contact.vip`` of the mapping, ``Hookshop_VIP__c`` by default) into the customer's
profile as staff's word (``update_customer(id, {"vip": ...})``), then keeps the newest ``LastModifiedDate``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import func, or_, select

from engine.plugin_api import Customer, Order, db, end_read, transaction, update_customer

from . import mapping, sync
from .models import Checkpoint, SyncRecord
from .settings import current


def _checkpoint(name: str) -> dict:
    row = db.session.get(Checkpoint, name)
    return dict(row.data) if row is not None else {}


def _save(name: str, data: dict) -> None:
    with transaction():
        row = db.session.get(Checkpoint, name, with_for_update=True)
        if row is None:
            db.session.add(Checkpoint(name=name, data=data))
        else:
            row.data = data


def _since(since: date) -> datetime:
    return datetime(since.year, since.month, since.day, tzinfo=UTC)


def _customers(since: date):
    start = _since(since)
    return select(Customer.id).where(Customer.merged_into_id.is_(None),
                                     or_(Customer.updated_at >= start, Customer.last_order_at >= start))


def _orders(since: date):
    start = _since(since)
    return select(Order.id).where(or_(Order.created_at >= start, Order.updated_at >= start))


PHASES = (("customer", _customers), ("order", _orders))


def plan(since: date, restart: bool = False) -> tuple[dict, int]:
    """The checkpoint to start from and how many records are left."""
    found = _checkpoint("backfill")
    if restart or found.get("since") != since.isoformat():
        found = {"since": since.isoformat(), "kind": "customer", "after_id": 0, "done": False}
    left = 0
    if not found.get("done"):
        phase = [kind for kind, _ in PHASES].index(found["kind"])
        for index, (_kind, query) in enumerate(PHASES[phase:]):
            stmt = query(since)
            if index == 0:
                stmt = stmt.where(stmt.selected_columns[0] > found["after_id"])
            left += db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    end_read()
    return found, left


def backfill(since: date, *, restart: bool = False, progress: Callable[[int], None] | None = None) -> dict:
    """Mark and push everything changed since ``since``, page after page; raises sync.SyncDeferred when
    Salesforce stops taking records (the checkpoint is the last page it took)."""
    settings = current()
    checkpoint, _left = plan(since, restart)
    summary = {"records": 0, "calls": 0, "synced": 0, "error": 0, "resumed": checkpoint.get("after_id", 0) > 0}
    if checkpoint.get("done"):
        return {**summary, "done_before": True}
    kinds = [kind for kind, _ in PHASES]
    for kind, query in PHASES[kinds.index(checkpoint["kind"]):]:
        after = checkpoint["after_id"] if kind == checkpoint["kind"] else 0
        while True:
            stmt = query(since)
            column = stmt.selected_columns[0]
            ids = list(db.session.execute(stmt.where(column > after).order_by(column).limit(settings.batch)).scalars())
            if not ids:
                break
            with transaction():
                if kind == "customer":
                    for customer in db.session.execute(select(Customer).where(Customer.id.in_(ids))).scalars():
                        sync.mark_customer(settings, customer)
                else:
                    for order in db.session.execute(select(Order).where(Order.id.in_(ids))).scalars():
                        sync.mark_order(settings, order)
            pushed = sync.push()  # SyncDeferred: this page waits, the checkpoint stays before it
            for key in ("calls", "synced", "error"):
                summary[key] += pushed[key]
            after = ids[-1]
            _save("backfill", {"since": since.isoformat(), "kind": kind, "after_id": after, "done": False})
            summary["records"] += len(ids)
            if progress is not None:
                progress(len(ids))
    _save("backfill", {"since": since.isoformat(), "kind": "order", "after_id": 0, "done": True})
    return summary


# --------------------------------------------------------------------------- pull


def _soql_datetime(value: str) -> str:
    """Salesforce's ``2026-12-02T08:15:30.250+0000`` -> ``2026-12-02T08:15:30Z`` (down to the second: the
    next pull's ``>`` sees that second's later changes again, which is harmless)."""
    parsed = datetime.strptime(value.replace("Z", "+0000")[:19] + "+0000", "%Y-%m-%dT%H:%M:%S%z")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pull_query(since: str | None) -> str:
    settings = current()
    vip = mapping.field_map(settings, "contact").get("vip")
    if not vip:
        raise ValueError("the mapping leaves the Contact's vip field out: there is nothing to pull")
    ext = settings.external_id
    where = f"{ext} != null" + (f" AND LastModifiedDate > {_soql_datetime(since)}" if since else "")
    return f"SELECT Id, {ext}, {vip}, LastModifiedDate FROM Contact WHERE {where} ORDER BY LastModifiedDate"


def pull() -> dict:
    """Read the Contacts changed since the last pull; VIP flags that differ go into the customer profiles."""
    settings = current()
    since = _checkpoint("pull").get("since")
    soql = pull_query(since)  # ValueError when the mapping leaves the vip field out
    vip_field = mapping.field_map(settings, "contact")["vip"]
    end_read()
    records = sync.connection().query_all(soql)  # client.Retryable: nothing changed, run again later
    summary = {"contacts": len(records), "changed": 0, "unknown": 0}
    newest = since
    for record in records:
        modified = record.get("LastModifiedDate")
        if modified and (newest is None or _soql_datetime(modified) >= _soql_datetime(newest)):
            newest = modified
        external = str(record.get(settings.external_id) or "")
        customer = db.session.get(Customer, int(external)) if external.isdigit() and len(external) <= 18 else None
        if customer is None or customer.merged_into_id is not None:
            summary["unknown"] += 1
            continue
        flag = bool(record.get(vip_field))
        if customer.is_vip == flag:
            continue
        end_read()
        update_customer(customer.id, {"vip": flag})
        _settle_contact(customer.id, flag)
        summary["changed"] += 1
    if newest != since:
        _save("pull", {"since": newest})
    end_read()
    return summary


def _settle_contact(customer_id: int, flag: bool) -> None:
    """The Contact already holds the new flag: when the vip field was all that differed, the record stays
    synced instead of being pushed back (no echo)."""
    settings = current()
    with transaction():
        customer = db.session.get(Customer, customer_id)
        if customer is None:
            return
        payload = mapping.contact_payload(settings, customer)
        row = db.session.execute(select(SyncRecord).where(SyncRecord.kind == "contact",
                                                          SyncRecord.hookshop_id == customer_id)
                                 .with_for_update()).scalar_one_or_none()
        vip = mapping.field_map(settings, "contact")["vip"]
        if row is not None and row.status == "synced" and {**row.payload, vip: flag} == payload:
            digest = sync.fingerprint(payload)
            row.payload, row.payload_hash, row.synced_hash = payload, digest, digest
            row.version += 1
        else:
            sync.mark("contact", customer_id, "Contact", payload)
