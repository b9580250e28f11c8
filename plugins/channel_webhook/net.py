"""Outbound webhook HTTP, on the core's toolkit (``engine.outbound.Client``, SSRF guard included).

A target URL's host is resolved and every address must be public (not private, loopback,
link-local, multicast, reserved, unspecified, shared address space, nor an IPv6 form carrying such an
IPv4 address), unless ``CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS`` (or the core's
``OUTBOUND_ALLOW_PRIVATE_TARGETS``) allows it: ``true`` allows every address, a comma separated list of
networks (``127.0.0.0/8, ::1``) allows those. The request connects to the address that was checked
(no second DNS lookup that could answer differently), sends the ``Host`` header and, for HTTPS,
verifies the certificate against the host name. Redirects are not followed; nothing is retried here
(the delivery log schedules retries).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.plugin_api import Client, OutboundError, TargetRefused, allowed_networks
from plugins.channel_webhook.settings import SETTINGS

MAX_RESPONSE = 2000
ALLOW_SETTING = "CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS"

__all__ = ["MAX_RESPONSE", "Result", "TargetRefused", "check_allow_setting", "check_url", "post"]


@dataclass
class Result:
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def client(timeout: float = 10.0) -> Client:
    return Client(timeout=timeout, allow_private=SETTINGS.get("ALLOW_PRIVATE_TARGETS"),
                  allow_hint=f"HOOKSHOP_{ALLOW_SETTING}", max_bytes=MAX_RESPONSE, user_agent="hookshop-webhooks/1")


def check_allow_setting() -> str | None:
    """A reason when the setting cannot be read (for ``plugin_setup``)."""
    try:
        allowed_networks(SETTINGS.get("ALLOW_PRIVATE_TARGETS"))
    except ValueError as exc:
        return f"HOOKSHOP_{ALLOW_SETTING} is not true or a list of networks: {exc}"
    return None


def check_url(url: str) -> None:
    client().check_url(url)


def post(url: str, body: bytes, headers: dict, timeout: float) -> Result:
    """POST ``body``; never raises (a refused target or a network error is a Result with ``error``)."""
    try:
        answer = client(timeout).post(url, body=body, headers={"Content-Type": "application/json", **headers})
    except TargetRefused as exc:
        return Result(None, 0, f"refused: {exc}")
    except OutboundError as exc:
        return Result(None, exc.duration_ms, exc.reason)
    return Result(answer.status_code, answer.duration_ms, None, answer.text)
