"""Keep inbound payloads for audit without secrets or card data.

Keys that name card data, tokens, secrets or passwords lose their value, and any string that holds a
card-number-shaped run of digits (13 to 19 digits that pass the Luhn check, spaces or dashes allowed)
has it masked. A body that is not JSON is kept as (masked) text, cut to ``MAX_TEXT`` characters.
"""

from __future__ import annotations

import re

from engine.plugin_api import REDACTED, mask_card_numbers

__all__ = ["REDACTED", "mask_card_numbers", "mask_values", "redact", "redact_text"]

MAX_TEXT = 64_000
_SENSITIVE_KEY = re.compile(r"card|cvv|cvc|cvn|secret|password|passwd|token|iban|account_number|order_key|"
                            r"payment_details|authorization|signature", re.IGNORECASE)


def _filled(item) -> bool:
    """A value worth hiding (a flag such as ``"gift_card": false`` says nothing)."""
    return not isinstance(item, bool) and item not in (None, "", [], {})


def redact(value):
    """A copy of a parsed JSON value without secrets and card data."""
    if isinstance(value, dict):
        return {key: (REDACTED if _SENSITIVE_KEY.search(str(key)) and _filled(item) else redact(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return mask_card_numbers(value)
    return value


def mask_values(value):
    """A copy with card numbers masked in every string (keys are kept: for messages, not payloads)."""
    if isinstance(value, dict):
        return {key: mask_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_values(item) for item in value]
    return mask_card_numbers(value) if isinstance(value, str) else value


def redact_text(text: str) -> str:
    return mask_card_numbers(text[:MAX_TEXT])
