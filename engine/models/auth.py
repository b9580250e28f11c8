from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Model, utcnow


class ApiKey(Model):
    """An API key: only its SHA-256 hash is stored; the key is shown once."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))  # comma separated: read,write,admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def scope_set(self) -> set[str]:
        return set(self.scopes.split(","))


class IdempotencyRecord(Model):
    """The first response to a request with an Idempotency-Key, per API key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class StaffUser(Model):
    """A staff member of the bundled admin: a role (engine/admin/permissions.py), an Argon2id password
    hash, the admin's language, and whether the account may log in."""

    __tablename__ = "staff_users"
    __table_args__ = (UniqueConstraint("email"),
                      CheckConstraint("role IN ('owner', 'accounting', 'warehouse', 'customer_service')",
                                      name="role_known"))
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(32))  # owner, accounting, warehouse, customer_service
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locale: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())


class StaffSession(Model):
    """A logged-in admin session, kept on the server: the browser's cookie holds the token, the table only
    its SHA-256. Logging out (or deactivating the user) deletes the row, so the cookie stops working in
    every process at once."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
