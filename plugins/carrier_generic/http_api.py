"""HTTP mode: create (and cancel) shipments through a carrier's small JSON API.

The request body is a template from the carriers file: a string that is exactly
``"{name}"`` is replaced by the value itself (a number, an address object), and
``{name}`` inside a longer string by its text. The response is read with dotted
paths (``"data.tracking.number"``). Connection errors, timeouts, 429 and 5xx
answers are retried (``retries`` times, waiting ``backoff`` seconds, doubled each
time); any other answer is final. Every attempt of one shipment sends the same
``Idempotency-Key``, so a carrier that honours it creates the shipment once.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import urllib.error
import urllib.request
from datetime import date

from engine.plugin_api import redact_text

log = logging.getLogger("hookshop.carrier_generic")

DEFAULT_REQUEST = {
    "reference": "{order_number}",
    "service": "{service}",
    "weight_grams": "{weight_grams}",
    "recipient": "{recipient}",
    "sender": "{sender}",
}
DEFAULT_RESPONSE = {
    "tracking_number": "tracking_number",
    "estimated_delivery": "estimated_delivery",
    "tracking_url": "tracking_url",
    "label_pdf": "label_pdf",
    "price": "price",
    "shipment_id": "id",
}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class CarrierApiError(Exception):
    """The carrier's API could not create the shipment (the message says why, for the timeline)."""


def _lookup(context, path: str):
    value = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def render(template, context: dict):
    """Fill a JSON template with values from ``context``."""
    if isinstance(template, dict):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, context) for value in template]
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(context, whole.group(1))

        def text(match):
            value = _lookup(context, match.group(1))
            return "" if value is None else str(value)

        return PLACEHOLDER.sub(text, template)
    return template


def read(response: dict, path: str | None):
    if not path:
        return None
    try:
        return _lookup(response, path)
    except KeyError:
        return None


def call(api, method: str, url: str, body: dict | None, idempotency_key: str) -> dict:
    """One logical call with retries; the parsed JSON answer, or ``CarrierApiError``."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", "Idempotency-Key": idempotency_key,
               "User-Agent": "hookshop-carrier-generic", **api.headers}
    if data is not None:
        headers["Content-Type"] = "application/json"
    attempts = api.retries + 1
    delay = api.backoff
    last = "no attempt made"
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=api.timeout) as answer:
                raw = answer.read()
            try:
                return json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                raise CarrierApiError(f"{method} {url} answered {answer.status} with a body that is not JSON") from exc
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            last = f"{method} {url} answered {exc.code}{': ' + detail if detail else ''}"
            if exc.code not in RETRY_STATUSES:
                raise CarrierApiError(last) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
                last = f"{method} {url} timed out after {api.timeout:g} s"
            else:
                last = f"{method} {url} failed: {reason}"
        log.warning("carrier API attempt %d of %d: %s", attempt, attempts, redact_text(last))
        if attempt < attempts and delay:
            time.sleep(delay)
            delay *= 2
    raise CarrierApiError(f"{last} (after {attempts} attempt{'s' if attempts != 1 else ''})")


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read()[:2000]
    except Exception:  # noqa: BLE001
        return ""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200]
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "title"):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return json.dumps(body)[:200]


def create(api, context: dict) -> dict:
    """POST the shipment; the mapped fields of the answer (``tracking_number`` is required)."""
    try:
        body = render(api.request if api.request is not None else DEFAULT_REQUEST, context)
    except KeyError as exc:
        raise CarrierApiError(f"the request template of the carriers file names an unknown value {exc}; "
                              f"known: {', '.join(sorted(context))}") from exc
    answer = call(api, "POST", api.url, body, context["idempotency_key"])
    mapping = {**DEFAULT_RESPONSE, **api.response}
    result = {key: read(answer, path) for key, path in mapping.items()}
    if not result["tracking_number"] or not isinstance(result["tracking_number"], (str, int)):
        raise CarrierApiError(f"POST {api.url} answered without a tracking number at "
                              f"{mapping['tracking_number']!r}")
    result["tracking_number"] = str(result["tracking_number"])
    if result["estimated_delivery"]:
        try:
            result["estimated_delivery"] = date.fromisoformat(str(result["estimated_delivery"])[:10])
        except ValueError:
            log.warning("carrier API gave an estimated delivery that is not a date: %r", result["estimated_delivery"])
            result["estimated_delivery"] = None
    if result["label_pdf"]:
        try:
            pdf = base64.b64decode(result["label_pdf"], validate=True)
        except (ValueError, TypeError):
            pdf = b""
        result["label_pdf"] = pdf if pdf.startswith(b"%PDF") else None
    if result["price"] is not None and (isinstance(result["price"], bool) or not isinstance(result["price"], int)):
        result["price"] = None
    return result


def cancel(api, context: dict) -> dict:
    try:
        url = render(api.cancel_url, context)
    except KeyError as exc:
        raise CarrierApiError(f"cancel_url names an unknown value {exc}") from exc
    return call(api, api.cancel_method, url, None, f"cancel-{context['idempotency_key']}")
