"""Exactly-once processing of webhook deliveries (payments, channels, carriers)."""

from __future__ import annotations

from sqlalchemy import select

from engine.db import db
from engine.models import InboxRecord


def seen(source: str, delivery_id: str) -> InboxRecord | None:
    """The record of an already processed delivery, or None."""
    return db.session.execute(select(InboxRecord).where(
        InboxRecord.source == source, InboxRecord.delivery_id == delivery_id)).scalar_one_or_none()


def record_once(source: str, delivery_id: str, response: dict | None = None) -> InboxRecord:
    """Record the delivery inside the caller's transaction (with its effect).

    A concurrent duplicate fails on the unique (source, delivery_id) at commit;
    check ``seen`` first to answer replays with 2xx."""
    record = InboxRecord(source=source, delivery_id=delivery_id, response=response or {})
    db.session.add(record)
    return record
