"""API keys (hashed, scoped, revocable), staff users, and Idempotency-Key records."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from engine.db import db, transaction, utcnow
from engine.errors import NotFound, ValidationFailed
from engine.models import ApiKey, IdempotencyRecord, StaffUser

SCOPES = ("read", "write", "admin")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, scopes: list[str], key: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; the clear key is returned once and only its hash is stored."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValidationFailed(f"scopes must be among {', '.join(SCOPES)}", errors={"scopes": bad or ["required"]})
    key = key or "hs_" + secrets.token_urlsafe(32)
    with transaction():
        api_key = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key), scopes=",".join(sorted(set(scopes))))
        db.session.add(api_key)
    return api_key, key


@dataclass(frozen=True)
class Caller:
    """Who calls the API: the key's id, name and scopes (never the key itself)."""

    id: int
    name: str
    scope_set: frozenset


def find_api_key(key: str) -> Caller | None:
    """The caller behind a clear key, or None when it is unknown or revoked (one indexed SELECT)."""
    row = db.session.execute(select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.revoked_at)
                             .where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Caller(row.id, row.name, frozenset(row.scopes.split(",")))


def revoke_api_key(key_id: int) -> ApiKey:
    with transaction():
        api_key = db.session.get(ApiKey, key_id)
        if api_key is None:
            raise NotFound(f"no API key with id {key_id}")
        api_key.revoked_at = api_key.revoked_at or utcnow()
    return api_key


def create_user(email: str, role: str, password: str) -> StaffUser:
    """A staff user of the admin (engine/services/staff.py: roles, Argon2id, the password rules)."""
    from engine.services import staff

    return staff.create_user(email, role, password)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of the request: the same key with another body is a conflict.

    JSON bodies are compared by value (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def find_idempotent(api_key_id: int, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored first response for this key, None if new; a different body is a 409."""
    record = db.session.execute(select(IdempotencyRecord).where(
        IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)).scalar_one_or_none()
    if record is not None and record.request_hash != fingerprint:
        from engine.errors import IdempotencyConflict

        raise IdempotencyConflict("this Idempotency-Key was used with another request body; use a new key",
                                  errors={"Idempotency-Key": ["used with another request"]})
    return record


def claim_idempotent(api_key_id: int, key: str, fingerprint: str) -> int:
    """Insert the key's record first, in the transaction of the effect; returns its id.

    A concurrent twin waits on the unique (API key, key) and then fails with an
    IntegrityError: the caller rolls back and replays the stored answer."""
    table = IdempotencyRecord.__table__
    return db.session.execute(insert(table).values(
        api_key_id=api_key_id, key=key, request_hash=fingerprint, status_code=0, response_body="",
        created_at=utcnow()).returning(table.c.id)).scalar_one()


def finish_idempotent(record_id: int, status: int, body: str) -> None:
    """Store the answer to replay (inside the same transaction as the effect)."""
    table = IdempotencyRecord.__table__
    db.session.execute(update(table).where(table.c.id == record_id).values(status_code=status, response_body=body))


def purge_idempotency(ttl_hours: int) -> int:
    with transaction():
        result = db.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < utcnow() - timedelta(hours=ttl_hours)))
    return result.rowcount or 0
