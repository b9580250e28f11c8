"""The plugin's tables: one sync-status row per mirrored record, and the checkpoints of the backfill and the
pull. Its migrations create them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.plugin_api import JSONType, db, utcnow

KINDS = ("account", "contact", "order")  # the order they are pushed in: a contact refers to its account, ...
STATUSES = ("pending", "synced", "error")


class SyncRecord(db.Model):  # type: ignore[name-defined]  # Flask-SQLAlchemy's dynamic base
    """The sync status of one hookshop record (``kind``, ``hookshop_id``) in Salesforce.

    ``payload`` is what Salesforce should hold (the mapped fields, built when a stage hook marked the record);
    ``payload_hash`` its fingerprint and ``synced_hash`` the fingerprint Salesforce last accepted, so a hook
    delivered again (or a later stage that changed nothing the record shows) sends nothing. ``version`` grows at
    every change of the payload: a push records its outcome only for the version it sent. ``pending`` waits for
    a push (``last_error`` says why the previous one failed, when it did), ``synced`` is current in Salesforce,
    ``error`` was refused by Salesforce for this record (a missing or invalid field): not retried until the
    payload changes or staff retry it. ``claimed_until`` is the lease of the push sending it."""

    __tablename__ = "crm_salesforce_records"
    __table_args__ = (
        UniqueConstraint("kind", "hookshop_id", name="uq_crm_salesforce_records_kind_hookshop_id"),
        CheckConstraint("kind IN ('account', 'contact', 'order')", name="kind_known"),
        CheckConstraint("status IN ('pending', 'synced', 'error')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_crm_salesforce_records_status", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    hookshop_id: Mapped[int]
    sobject: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    salesforce_id: Mapped[str | None] = mapped_column(String(18))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=1)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Checkpoint(db.Model):  # type: ignore[name-defined]
    """Where a long-running command got to: ``backfill`` (``{"since", "kind", "after_id"}``) and ``pull``
    (``{"since": <the newest LastModifiedDate pulled>}``)."""

    __tablename__ = "crm_salesforce_checkpoints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
