"""Received webhook deliveries (the inbox): each processed once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import JSONType, Model, utcnow


class InboxRecord(Model):
    """A received webhook delivery (by its sender's id), stored with its effect so it is processed once."""

    __tablename__ = "inbox_records"
    __table_args__ = (UniqueConstraint("source", "delivery_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(200))
    response: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
