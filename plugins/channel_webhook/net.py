"""Outbound HTTP with an SSRF guard.

A target URL's host is resolved and every address must be public (not private, loopback,
link-local, multicast, reserved, unspecified or shared address space), unless
``CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS`` allows it: ``true`` allows every address, a comma separated
list of networks (``127.0.0.0/8, ::1``) allows those. The request then connects to the address that
was checked (no second DNS lookup that could answer differently), sends the ``Host`` header and, for
HTTPS, verifies the certificate against the host name. Redirects are not followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

MAX_RESPONSE = 2000


class TargetRefused(ValueError):
    """The URL may not be called (bad scheme, unresolvable or non-public address)."""


@dataclass
class Result:
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _allowed_networks():
    setting = current_app.config.get("CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS")
    if setting is True:
        return True
    if not setting:
        return []
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    if len(items) == 1 and str(items[0]).strip().lower() in ("true", "yes", "1", "all"):
        return True
    return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip()]


def check_allow_setting() -> str | None:
    """A reason when the setting cannot be read (for ``plugin_setup``)."""
    try:
        _allowed_networks()
    except ValueError as exc:
        return f"HOOKSHOP_CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS is not true or a list of networks: {exc}"
    return None


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path_and_query)``; raises TargetRefused for anything but http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs can receive webhooks")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed (use the signature to authenticate)")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def resolve_checked(host: str, port: int) -> str:
    """An address of ``host`` that may be called; TargetRefused otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    allowed = _allowed_networks()
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not is_public(ip) and allowed is not True and not any(ip in net for net in allowed
                                                                  if net.version == ip.version):
            raise TargetRefused(f"{host} resolves to {ip}, a private, loopback, link-local or reserved address "
                                "(allow it with HOOKSHOP_CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS)")
        addresses.append(str(ip))
    if not addresses:
        raise TargetRefused(f"cannot resolve {host}")
    return addresses[0]


def check_url(url: str) -> None:
    _scheme, host, port, _path = parse_url(url)
    resolve_checked(host, port)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict, timeout: float) -> Result:
    """POST ``body``; never raises (a refused target or a network error is a Result with ``error``)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, path = parse_url(url)
        address = resolve_checked(host, port)
    except TargetRefused as exc:
        return Result(None, elapsed(), f"refused: {exc}")
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host, port, address, timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                       "User-Agent": "hookshop-webhooks/1", **headers})
        response = conn.getresponse()
        text = response.read(MAX_RESPONSE).decode("utf-8", "replace")
        return Result(response.status, elapsed(), None, text)
    except (OSError, http.client.HTTPException) as exc:
        return Result(None, elapsed(), f"{type(exc).__name__}: {exc}"[:500])
    finally:
        conn.close()
