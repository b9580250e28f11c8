"""What may be written to a log: personal data masked, secrets and card numbers never.

Log lines go to files, terminals and log services that staff, hosting providers and
support tools read; they are kept for long and copied widely. So anything logged that
may hold a customer's data or a credential goes through one of these first:

* ``mask_email("ann@example.com")`` -> ``"a***@example.com"`` (enough to tell two
  customers apart in a log, not enough to write to them);
* ``mask_url(url)`` -> scheme, host and path only (no user info, no query: webhook
  and API URLs often carry tokens there);
* ``redact_text(text)`` for free text (exception messages, a remote server's answer):
  e-mail addresses masked, card-number-shaped digit runs (13 to 19 digits passing the
  Luhn check), bearer tokens, hookshop API keys, ``whsec_`` and Stripe-style secrets
  and URL query strings replaced.

Answers to API calls may echo what the caller sent (a validation message); logs may not.
"""

from __future__ import annotations

import re
import traceback
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"

_EMAIL = re.compile(r"(?<![\w.%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_DIGIT_RUN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SECRETS = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"  # an Authorization header's value
    r"|\b(?:hs|whsec|sk|rk|pk)_[A-Za-z0-9_+/=.-]{6,}"  # hookshop API keys, Standard Webhooks and Stripe secrets
    r"|\bv1,[A-Za-z0-9+/=]{20,}"  # a Standard Webhooks signature
)
_URL_QUERY = re.compile(r"(\bhttps?://[^\s?#'\"]*)\?[^\s#'\"]*")
_URL_USERINFO = re.compile(r"(\bhttps?://)[^/\s@'\"]+@")


def mask_email(email) -> str:
    """``"ann@example.com"`` -> ``"a***@example.com"``; anything that is not an address -> ``"***"``."""
    if not isinstance(email, str) or "@" not in email:
        return "***"
    local, _, domain = email.strip().rpartition("@")
    return f"{local[:1]}***@{domain}" if local and domain else "***"


def mask_url(url) -> str:
    """``"https://u:p@hooks.example/in?token=x"`` -> ``"https://hooks.example/in"`` (no user info, no query)."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return REDACTED
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_card_numbers(text: str) -> str:
    """Card-number-shaped digit runs (13 to 19 digits, spaces or dashes allowed, Luhn) -> ``[redacted]``."""

    def replace(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return REDACTED if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)

    return _DIGIT_RUN.sub(replace, text)


def redact_text(text) -> str:
    """Free text fit for a log: e-mail addresses masked; card numbers, tokens, secrets, URL queries removed."""
    text = str(text)
    text = _SECRETS.sub(REDACTED, text)
    text = _URL_USERINFO.sub(r"\1", text)
    text = _URL_QUERY.sub(r"\1?" + REDACTED, text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return mask_card_numbers(text)


def redacted_traceback(exc: BaseException) -> str:
    """The exception with its traceback, through ``redact_text``: what ``log.exception`` would print."""
    return redact_text("".join(traceback.format_exception(exc)).rstrip())


def redact_values(value):
    """A copy of a JSON-like value (messages, field errors) with ``redact_text`` applied to every string."""
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_values(item) for item in value]
    return redact_text(value) if isinstance(value, str) else value
