"""API keys (hashed, scoped, revocable), staff users, and Idempotency-Key records."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import CursorResult

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


# How long a process trusts a key it looked up (``API_KEY_CACHE_SECONDS``, default 1 s; 0: ask the database
# on every request): a key revoked by another process is refused within that time, by this one at once.
KEY_CACHE_SECONDS = 1.0
clock = time.monotonic  # the cache's clock (tests replace it)
_cache_lock = threading.Lock()


def _key_cache() -> dict:
    """The app's cache of known keys: key hash -> (valid until, Caller). Unknown and revoked keys are
    never cached (a key created a moment ago by ``hookshop create-api-key`` works at once)."""
    return current_app.extensions.setdefault("hookshop_api_keys", {})


def find_api_key(key: str) -> Caller | None:
    """The caller behind a clear key, or None when it is unknown or revoked: one indexed SELECT, or
    none when this process looked the key up less than ``API_KEY_CACHE_SECONDS`` ago."""
    digest = hash_key(key)
    ttl = float(current_app.config.get("API_KEY_CACHE_SECONDS", KEY_CACHE_SECONDS) or 0)
    cache = _key_cache()
    now = clock()
    hit = cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = db.session.execute(select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.revoked_at)
                             .where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        cache.pop(digest, None)
        return None
    caller = Caller(row.id, row.name, frozenset(row.scopes.split(",")))
    if ttl > 0:
        with _cache_lock:
            if len(cache) > 10_000:  # many keys in turn: start over rather than grow
                cache.clear()
            cache[digest] = (now + ttl, caller)
    return caller


def forget_api_keys() -> None:
    """Drop this process's cached keys (a revocation here takes effect at once)."""
    with _cache_lock:
        _key_cache().clear()


def revoke_api_key(key_id: int) -> ApiKey:
    with transaction():
        api_key = db.session.get(ApiKey, key_id)
        if api_key is None:
            raise NotFound(f"no API key with id {key_id}")
        api_key.revoked_at = api_key.revoked_at or utcnow()
    forget_api_keys()
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


@functools.cache
def _record_by_key():
    """The lookup of a key's record, built once (placement's first statement: no statement built, no cache
    key computed per request)."""
    return select(IdempotencyRecord).where(IdempotencyRecord.api_key_id == bindparam("api_key_id"),
                                           IdempotencyRecord.key == bindparam("key"))


@functools.cache
def _insert_record():
    table = IdempotencyRecord.__table__
    return insert(table).returning(table.c.id)


def find_idempotent(api_key_id: int, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """The stored first response for this key, None if new; a different body is a 409."""
    record = db.session.execute(_record_by_key(), {"api_key_id": api_key_id, "key": key}).scalar_one_or_none()
    if record is not None and record.request_hash != fingerprint:
        from engine.errors import IdempotencyConflict

        raise IdempotencyConflict("this Idempotency-Key was used with another request body; use a new key",
                                  errors={"Idempotency-Key": ["used with another request"]})
    return record


def claim_idempotent(api_key_id: int, key: str, fingerprint: str) -> int:
    """Insert the key's record first, in the transaction of the effect; returns its id.

    A concurrent twin waits on the unique (API key, key) and then fails with an
    IntegrityError: the caller rolls back and replays the stored answer."""
    return record_idempotent(api_key_id, key, fingerprint, 0, "")


def record_idempotent(api_key_id: int, key: str, fingerprint: str, status: int, body: str) -> int:
    """Insert the key's record with its answer, as the last statement of the effect's transaction;
    returns its id. A concurrent twin's insert waits on the unique (API key, key), then fails with an
    IntegrityError: its caller rolls back and replays this answer."""
    return db.session.execute(_insert_record(), {
        "api_key_id": api_key_id, "key": key, "request_hash": fingerprint, "status_code": status,
        "response_body": body, "created_at": utcnow()}).scalar_one()


def finish_idempotent(record_id: int, status: int, body: str) -> None:
    """Store the answer to replay (inside the same transaction as the effect)."""
    table = IdempotencyRecord.__table__
    db.session.execute(update(table).where(table.c.id == record_id).values(status_code=status, response_body=body))


def purge_idempotency(ttl_hours: int) -> int:
    with transaction():
        result = db.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < utcnow() - timedelta(hours=ttl_hours)))
    assert isinstance(result, CursorResult)  # a DELETE without RETURNING; Session.execute's type says Result
    return result.rowcount or 0
