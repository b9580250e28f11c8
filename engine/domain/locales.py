"""Locales: a BCP 47 tag (``tr``, ``tr-TR``, ``en``) checked with Babel and kept in one spelling."""

from __future__ import annotations

import re
from typing import overload

from babel import Locale, UnknownLocaleError

MAX_LENGTH = 35  # BCP 47's longest practical tag (RFC 5646 suggests 35 characters)
# language (2-3 letters), then subtags of 1-8 letters or digits; Babel alone also takes "en_US.UTF-8"
TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


@overload
def normalize(tag: str) -> str: ...
@overload
def normalize(tag: None) -> None: ...
def normalize(tag: str | None) -> str | None:
    """``"tr_tr"``, ``"TR-tr"`` -> ``"tr-TR"``; ``ValueError`` for a tag Babel does not know.

    Stored as BCP 47 (hyphens): language, optional script, optional territory."""
    if tag is None:
        return None
    text = str(tag).strip()
    if not text or len(text) > MAX_LENGTH or not TAG.match(text) or text.lower().startswith("und"):
        raise ValueError("a BCP 47 language tag such as en, tr or tr-TR")
    try:
        locale = Locale.parse(text.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"{text!r} is not a language tag Babel knows (e.g. en, tr, tr-TR)") from exc
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


def lenient(tag) -> str | None:
    """``normalize`` for what a channel sends: an unknown tag is dropped (never rejects an order)."""
    try:
        return normalize(tag) if isinstance(tag, str) and tag.strip() else None
    except ValueError:
        return None
