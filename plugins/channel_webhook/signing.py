"""Signatures: Standard Webhooks (generic channels, outbound deliveries) and the base64 HMAC-SHA256
of the raw body that Shopify and WooCommerce send."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def standard_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional, as in the reference libraries)."""
    body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from exc
    if len(key) < 16:
        raise ValueError("a Standard Webhooks secret needs at least 16 bytes of key")
    return key


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    mac = hmac.new(standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def standard_headers(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict:
    """The three Standard Webhooks headers; one signature per secret (rotation), space separated."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(standard_signature(s, msg_id, timestamp, body) for s in secrets)}


def verify_standard(secrets: list[str], headers, body: bytes, now: float, tolerance: int = 300) -> str | None:
    """None when the headers carry a valid signature of one of ``secrets`` within ``tolerance``
    seconds of ``now`` (unix time); otherwise the reason."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (msg_id and timestamp and signature):
        return "missing webhook-id, webhook-timestamp or webhook-signature header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not a unix timestamp"
    if abs(now - ts) > tolerance:
        return f"webhook-timestamp is more than {tolerance} seconds away from now"
    offered = []
    for part in signature.split():
        version, _, value = part.partition(",")
        if version == "v1" and value:
            offered.append(value)
    for secret in secrets:
        try:
            expected = standard_signature(secret, msg_id, ts, body).split(",", 1)[1]
        except ValueError:
            continue
        if any(hmac.compare_digest(expected.encode(), value.encode()) for value in offered):
            return None
    return "no valid v1 signature"


def body_hmac_base64(secret: str, body: bytes) -> str:
    """Shopify's and WooCommerce's signature: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_body_hmac(secrets: list[str], offered: str | None, body: bytes) -> str | None:
    if not offered:
        return "missing signature header"
    for secret in secrets:
        if hmac.compare_digest(body_hmac_base64(secret, body).encode(), offered.strip().encode()):
            return None
    return "wrong signature"
