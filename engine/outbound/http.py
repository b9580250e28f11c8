"""One HTTP client for every outbound call: requests with urllib3's connection pools and ``Retry``.

``Client(...).send(method, url, body=..., headers=...)`` answers an ``Answer`` (any status) or raises
``TargetRefused`` (the URL may not be called) or ``OutboundError`` (no answer: refused connection,
timeout, TLS failure; ``timed_out`` says which). Every call has a timeout (default 10 s).

**The SSRF guard** (``guard=True``, the default, for URLs that come from API users or staff) is the
transport: the session's adapter builds connections that resolve the host, check *every* address with
``engine.outbound.addresses`` (private, loopback, link-local, multicast, reserved and the IPv6 forms
carrying such an IPv4 address are refused) and connect to those checked addresses. There is no
second lookup between the check and the connection, so DNS rebinding cannot slip a private address
in; TLS still verifies the certificate against the host name. Each redirect hop (only followed with
``follow_redirects=True``) is a new connection through the same check. Environment proxies are
ignored while guarded (the guard must see the real destination). Allowed networks: the core setting
``OUTBOUND_ALLOW_PRIVATE_TARGETS`` plus the plugin's own (``allow_private=``), each ``true`` or a list of
networks (``127.0.0.0/8, ::1``). ``guard=False`` is for URLs from the operator's own configuration
(a carriers file, a sync URL): those may be on a private network, and environment proxies apply.

**Retries** are opt-in (``retries=N``): connection errors, timeouts and ``retry_statuses`` answers are
tried again by urllib3, for idempotent methods, and for POST only with ``idempotent_post=True`` (the
request carries an idempotency key). Back-off (``backoff`` seconds, doubled each retry, at most
``backoff_max``; a ``Retry-After`` up to that too) is for background jobs: **inside a web request the
client never sleeps**, its retries (if any) go at once, so a request is never held longer than
``timeout`` per attempt.
"""

from __future__ import annotations

import json as _json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from flask import current_app, has_app_context, has_request_context
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util import connection as urllib3_connection
from urllib3.util.retry import Retry

from engine.outbound.addresses import Allowed, TargetRefused, allowed_networks, resolve_checked

DEFAULT_TIMEOUT = 10.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CORE_ALLOW_SETTING = "OUTBOUND_ALLOW_PRIVATE_TARGETS"


class OutboundError(Exception):
    """No answer came: ``reason`` says why (for a log or a timeline), ``attempts`` how often it was tried."""

    def __init__(self, reason: str, *, timed_out: bool = False, attempts: int = 1, duration_ms: int = 0):
        super().__init__(reason)
        self.reason, self.timed_out, self.attempts, self.duration_ms = reason, timed_out, attempts, duration_ms


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes
    duration_ms: int
    attempts: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        """The body as JSON (``{}`` when empty); ValueError when it is not JSON."""
        return _json.loads(self.content) if self.content.strip() else {}


# --------------------------------------------------------------------------- the guarded transport


class _DoubledBackoff(Retry):
    """``backoff`` before the first retry, doubled after each (urllib3 waits nothing before the first)."""

    def get_backoff_time(self) -> float:
        errors = len([h for h in self.history if h.redirect_location is None])
        if errors == 0 or not self.backoff_factor:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1)))

    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.backoff_max)


def _guarded_connection(base, allowed: Allowed, hint: str):
    class Guarded(base):
        def _new_conn(self):
            addresses = resolve_checked(self._dns_host, self.port, allowed, hint)  # TargetRefused passes through
            last: OSError | None = None
            for address in addresses:  # every one was checked: connect to them, never to a new lookup
                try:
                    return urllib3_connection.create_connection(
                        (address, self.port), self.timeout, source_address=self.source_address,
                        socket_options=self.socket_options)
                except TimeoutError as exc:
                    raise ConnectTimeoutError(self, f"connection to {self.host} timed out "
                                                    f"(connect timeout={self.timeout})") from exc
                except OSError as exc:
                    last = exc
            raise NewConnectionError(self, f"Failed to establish a new connection: {last}")

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections connect only to checked addresses."""

    def __init__(self, allowed: Allowed, hint: str = "", **kwargs):
        self._allowed, self._hint = allowed, hint
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {
            "ConnectionCls": _guarded_connection(HTTPConnectionPool.ConnectionCls, self._allowed, self._hint)})
        https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {
            "ConnectionCls": _guarded_connection(HTTPSConnectionPool.ConnectionCls, self._allowed, self._hint)})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise TargetRefused("a guarded request does not go through a proxy")


def parse_target(url: str, *, allow_credentials: bool = False) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; TargetRefused for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs can be called")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if (parts.username or parts.password) and not allow_credentials:
        raise TargetRefused("credentials in the URL are not allowed (use the signature to authenticate)")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


# --------------------------------------------------------------------------- the client


@dataclass
class Client:
    timeout: float = DEFAULT_TIMEOUT
    guard: bool = True
    allow_private: object = None  # the plugin's own setting: true, or networks
    allow_hint: str = "HOOKSHOP_" + CORE_ALLOW_SETTING  # the setting named when a target is refused
    retries: int = 0
    backoff: float = 0.0
    backoff_max: float = 30.0
    retry_statuses: frozenset = RETRY_STATUSES
    idempotent_post: bool = False
    follow_redirects: bool = False
    max_bytes: int | None = None  # read at most this much of an answer (a log keeps the start)
    user_agent: str = "hookshop"

    def allowed(self) -> Allowed:
        """The allowed networks; an unreadable setting refuses (TargetRefused naming it), never allows."""
        core = current_app.config.get(CORE_ALLOW_SETTING) if has_app_context() else None
        try:
            return allowed_networks(core, self.allow_private)
        except ValueError as exc:
            raise TargetRefused(f"HOOKSHOP_{CORE_ALLOW_SETTING} or {self.allow_hint} is not true or a list of "
                                f"networks: {exc}") from exc

    def check_url(self, url: str) -> None:
        """TargetRefused when ``url`` could not be called now (a subscription's URL, say)."""
        _scheme, host, port = parse_target(url, allow_credentials=not self.guard)
        if self.guard:
            resolve_checked(host, port, self.allowed(), self.allow_hint)

    def _retry(self) -> Retry | int:
        if not self.retries:
            return Retry(0, read=False, redirect=False)
        in_request = has_request_context()  # a web request is never put to sleep
        methods = Retry.DEFAULT_ALLOWED_METHODS | ({"POST"} if self.idempotent_post else set())
        return _DoubledBackoff(total=self.retries, redirect=False, status_forcelist=self.retry_statuses,
                               allowed_methods=methods, raise_on_status=False,
                               backoff_factor=0 if in_request else self.backoff,
                               backoff_max=self.backoff_max, respect_retry_after_header=not in_request)

    def _session(self) -> requests.Session:
        session = requests.Session()
        retry = self._retry()
        adapter: HTTPAdapter
        if self.guard:
            session.trust_env = False  # no environment proxies: the guard checks the real destination
            adapter = GuardedAdapter(self.allowed(), self.allow_hint, max_retries=retry)
        else:
            adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def send(self, method: str, url: str, *, body: bytes | None = None, json=None,
             headers: Mapping[str, str] | None = None) -> Answer:
        parse_target(url, allow_credentials=not self.guard)
        started = time.monotonic()
        sent_headers = {"User-Agent": self.user_agent, **(headers or {})}
        with self._session() as session:
            try:
                response = session.request(method, url, data=body, json=json, headers=sent_headers,
                                           timeout=self.timeout, allow_redirects=self.follow_redirects,
                                           stream=True)
                with response:
                    content = _read(response, self.max_bytes)
            except requests.RequestException as exc:
                failure = self._failure(exc)
                failure.duration_ms = int((time.monotonic() - started) * 1000)
                raise failure from exc
        attempts = 1 + len(getattr(getattr(response.raw, "retries", None), "history", ()) or ())
        return Answer(response.status_code, content, int((time.monotonic() - started) * 1000), attempts,
                      response.headers)  # case-insensitive

    def post(self, url: str, **kwargs) -> Answer:
        return self.send("POST", url, **kwargs)

    def _failure(self, exc: requests.RequestException) -> OutboundError:
        cause = exc.args[0] if exc.args else exc
        attempts = self.retries + 1 if isinstance(cause, MaxRetryError) else 1
        reason = cause.reason if isinstance(cause, MaxRetryError) else cause
        timeout_types = (TimeoutError, ConnectTimeoutError, ReadTimeoutError)
        if not isinstance(reason, NewConnectionError) and (isinstance(exc, requests.Timeout)
                                                           or isinstance(reason, timeout_types)):
            return OutboundError(f"timed out after {self.timeout:g} s", timed_out=True, attempts=attempts)
        return OutboundError(f"{type(reason).__name__}: {reason}"[:500], attempts=attempts)


def _read(response: requests.Response, limit: int | None) -> bytes:
    if limit is None:
        return response.content
    chunks, size = [], 0
    for chunk in response.iter_content(8192):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]
