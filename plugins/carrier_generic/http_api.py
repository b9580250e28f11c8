"""HTTP mode: create (and cancel) shipments through a carrier's small JSON API.

The request body is a template from the carriers file: a string that is exactly
``"{name}"`` is replaced by the value itself (a number, an address object), and
``{name}`` inside a longer string by its text. The response is read with dotted
paths (``"data.tracking.number"``). Connection errors, timeouts, 408, 425, 429 and
5xx answers are retried (``retries`` times) by the core's outbound client
(``engine.outbound``: requests and urllib3's ``Retry``); outside a web request it
waits ``backoff`` seconds before the first retry, doubled each time, and inside one
it retries at once (a request never sleeps). Any other answer is final. Every
attempt of one shipment sends the same ``Idempotency-Key``, so a carrier that
honours it creates the shipment once. The URLs come from the operator's carriers
file, so they may be on a private network (no SSRF guard) and proxies apply.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import date

from engine.plugin_api import Client, OutboundError, TargetRefused, redact_text

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
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    """One logical call with retries (the core's outbound client, urllib3's Retry); the parsed JSON
    answer, or ``CarrierApiError``. Back-off waits only outside a web request: staff shipping an order
    get the carrier's answer, or its failure, without a sleep."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json", "Idempotency-Key": idempotency_key, **api.headers}
    if data is not None:
        headers["Content-Type"] = "application/json"
    client = Client(timeout=api.timeout, guard=False, retries=api.retries, backoff=api.backoff,
                    retry_statuses=RETRY_STATUSES, idempotent_post=True, user_agent="hookshop-carrier-generic")
    try:
        answer = client.send(method, url, body=data, headers=headers)
    except OutboundError as exc:
        what = f"timed out after {api.timeout:g} s" if exc.timed_out else f"failed: {exc.reason}"
        raise CarrierApiError(f"{method} {url} {what}{_after(exc.attempts)}") from exc
    except TargetRefused as exc:
        raise CarrierApiError(f"{method} {url} cannot be called: {exc}") from exc
    if answer.attempts > 1:
        log.warning("carrier API %s %s took %d attempts", method, redact_text(url), answer.attempts)
    if not answer.ok:
        detail = _detail(answer.content)
        last = f"{method} {url} answered {answer.status_code}{': ' + detail if detail else ''}"
        raise CarrierApiError(last + (_after(answer.attempts) if answer.status_code in RETRY_STATUSES else ""))
    try:
        return answer.json()
    except ValueError as exc:
        raise CarrierApiError(f"{method} {url} answered {answer.status_code} with a body that is not JSON") from exc


def _after(attempts: int) -> str:
    return f" (after {attempts} attempt{'s' if attempts != 1 else ''})"


def _detail(raw: bytes) -> str:
    raw = raw[:2000]
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
