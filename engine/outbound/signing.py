"""Standard Webhooks (https://www.standardwebhooks.com) signing and verification, through the
maintained ``standardwebhooks`` package, with secret rotation.

A secret is ``whsec_`` + base64 of the key (the prefix is optional, as in the reference libraries), or
the key itself as ``bytes``. Several secrets may be current while one is being rotated: pass them
newest first. ``sign_headers`` signs with each (``webhook-signature: v1,<newest> v1,<older>``, the
spec's space separated list), so a receiver that knows either verifies; ``verify`` accepts a
signature of any current secret. A secret that is no longer passed no longer verifies.

``verify`` checks the headers' presence, the timestamp against ``tolerance`` (default ±5 minutes) and
the signatures, each computed by ``standardwebhooks.Webhook.sign``; unlike ``Webhook.verify`` it takes
a tolerance and a clock, and a malformed ``webhook-signature`` list is a refusal, not an exception.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _random
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
Secret = str | bytes


class SignatureRefused(ValueError):
    """A delivery whose Standard Webhooks headers do not verify; the message says why."""


def new_secret() -> str:
    """A new secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def secret_key(secret: Secret, *, min_bytes: int = 16) -> bytes:
    """The HMAC key of a secret; ValueError when it is not ``whsec_<base64>`` of ``min_bytes`` or more."""
    if isinstance(secret, bytes):
        key = secret
    else:
        body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
        try:  # validated here: the package skips characters that are not base64
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from exc
    if len(key) < max(min_bytes, 1):
        raise ValueError(f"a Standard Webhooks secret needs at least {max(min_bytes, 1)} bytes of key")
    return key


def signature(secret: Secret, msg_id: str, timestamp: int, body: bytes, *, min_bytes: int = 1) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (body: UTF-8 bytes)."""
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    return Webhook(secret_key(secret, min_bytes=min_bytes)).sign(msg_id, moment, body.decode("utf-8"))


def sign_headers(secrets: Sequence[Secret], body: bytes, *, msg_id: str | None = None,
                 timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a delivery of ``body``, one signature per current secret (newest first).
    ``msg_id`` should be stable across retries of one message (receivers deduplicate on it)."""
    if not secrets:
        raise ValueError("no secret to sign with")
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets)}


def verify(secrets: Sequence[Secret], headers: Mapping[str, str], body: bytes, *, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS, min_bytes: int = 1) -> str:
    """The ``webhook-id`` of a delivery signed by one of ``secrets`` within ``tolerance`` seconds of
    ``now``; SignatureRefused otherwise. A secret that is not a valid one is skipped."""
    msg_id, stamp, offered = (headers.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and stamp and offered):
        raise SignatureRefused("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureRefused("webhook-timestamp is not a unix timestamp in seconds") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureRefused(f"webhook-timestamp is more than {tolerance:g} seconds away from now")
    given = [_decoded(value) for version, _, value in (part.partition(",") for part in offered.split())
             if version == "v1"]
    given = [g for g in given if g]
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRefused("the body is not UTF-8 (Standard Webhooks signs text)") from None
    for secret in secrets:
        try:
            expected = _decoded(signature(secret, msg_id, timestamp, body, min_bytes=min_bytes).split(",", 1)[1])
        except ValueError:
            continue
        if expected is not None and any(hmac.compare_digest(expected, value) for value in given if value):
            return msg_id
    raise SignatureRefused("no valid v1 signature")


def _decoded(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
