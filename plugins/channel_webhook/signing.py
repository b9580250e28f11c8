"""Signatures: the base64 HMAC-SHA256 of the raw body that Shopify and WooCommerce send (the platforms'
own scheme). Standard Webhooks (generic channels, outbound deliveries) is the core's
``engine.outbound`` toolkit; ``new_secret`` is its secret generator."""

from __future__ import annotations

import base64
import hashlib
import hmac

from engine.plugin_api import new_secret

__all__ = ["body_hmac_base64", "new_secret", "verify_body_hmac"]


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
