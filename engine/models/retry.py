"""The one retry queue of the engine (``engine.retry_queue``): a row per unit of work a kind retries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import JSONType, Model, utcnow


class RetryTask(Model):
    """One unit of retried work: ``kind`` names its handler (``register_task_kinds``), ``key`` is unique
    within the kind (enqueueing the same key twice is one task).

    ``status``: ``pending`` (due at ``next_attempt_at``), ``running`` (claimed by a worker until
    ``leased_until``; an expired lease is claimed again), ``done``, ``dead`` (its kind's delays ran out,
    or it failed for good; ``hookshop tasks requeue`` puts it back). ``attempts`` counts the claims.
    """

    __tablename__ = "retry_tasks"
    __table_args__ = (UniqueConstraint("kind", "key"),
                      CheckConstraint("status IN ('pending', 'running', 'done', 'dead')", name="status_known"),
                      Index("ix_retry_tasks_due", "status", "next_attempt_at"),
                      Index("ix_retry_tasks_lease", "status", "leased_until"),
                      {"sqlite_autoincrement": True})  # ids are never reused: a stage-hook task's id is its event's
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
