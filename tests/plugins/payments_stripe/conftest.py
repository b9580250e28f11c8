"""Fixtures for the Stripe plugin: localstripe served in-process on 127.0.0.1, the official SDK.

``localstripe`` (session) is a real HTTP server (localstripe's aiohttp app on a
loopback port, no pickle file, no 1 s webhook delay) that the test can stop and
start again on the same port; its store survives a restart. A spy middleware
logs every request with its ``Idempotency-Key`` and can make the server fail
on the next matching request: drop the connection before handling it, drop it
after handling it (the answer is lost), or answer 429.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import types
import urllib.parse
import urllib.request
import uuid

import pytest
import stripe
from conftest import service_missing

SECRET_KEY = "sk_test_hookshop"
WEBHOOK_SECRET = "whsec_hookshop_test_secret"


def pytest_configure(config):
    config.addinivalue_line("markers", "stripe_capture(mode): HOOKSHOP_STRIPE_CAPTURE for the test's app")
    # localstripe registers plain-function handlers on aiohttp, which warns about each
    config.addinivalue_line("filterwarnings", "ignore:Bare functions are deprecated:DeprecationWarning")


class LocalStripe:
    def __init__(self):
        try:
            import localstripe.webhooks as webhooks
            from aiohttp import web
            from localstripe import resources, server
        except ImportError as exc:  # pragma: no cover - the dev extra installs it
            service_missing(f"localstripe is not installed: {exc}")
        self.web, self.webhooks = web, webhooks
        resources.Store.dump_to_disk = lambda self: None  # no pickle file on disk
        resources.Store.try_load_from_disk = lambda self: None
        webhooks.asyncio = types.SimpleNamespace(  # drop localstripe's 1 s webhook delay
            sleep=lambda _s: asyncio.sleep(0), ensure_future=asyncio.ensure_future)
        self.log: list[tuple[str, str, str | None]] = []
        self._trap = None
        server.app.middlewares.insert(0, self._spy)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(server.app, access_log=None)
        self.site = None
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(10)
        self.start()

    # ------------------------------------------------------------ the spy and its traps
    @property
    def _spy(self):
        web = self.web

        @web.middleware
        async def spy(request, handler):
            self.log.append((request.method, request.path, request.headers.get("Idempotency-Key")))
            trap = self._trap
            if trap and request.method == trap[0] and request.path.startswith(trap[1]) \
                    and (trap[3] is None or request.path.endswith(trap[3])):
                self._trap = None
                mode = trap[2]
                if mode == "429":
                    return web.json_response({"error": {"type": "rate_limit_error", "message": "Too many requests"}},
                                             status=429)
                if mode == "after":  # Stripe did it, but the answer never arrives
                    await handler(request)
                await self._stop()  # the server goes down, this connection is dropped
                request.transport.close()
                raise asyncio.CancelledError()
            return await handler(request)

        return spy

    def fail_next(self, method: str, path_prefix: str, mode: str, path_suffix: str | None = None):
        """``mode``: ``before`` (crash before handling), ``after`` (crash after handling), ``429``."""
        self._trap = (method, path_prefix, mode, path_suffix)

    # ------------------------------------------------------------ stop / start on the same port
    async def _stop(self):
        if self.site is not None:
            site, self.site = self.site, None
            await site.stop()

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self):
        async def go():
            if self.site is None:
                self.site = self.web.TCPSite(self.runner, "127.0.0.1", self.port)
                await self.site.start()

        self._run(go())

    def stop(self):
        self._run(self._stop())

    def reset(self):
        self.start()
        self._trap = None
        self.webhooks._webhooks.clear()
        urllib.request.urlopen(urllib.request.Request(self.url + "/_config/data", method="DELETE"), timeout=10)
        self.log.clear()

    def register_webhook(self, url: str, secret: str = WEBHOOK_SECRET):
        data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
        urllib.request.urlopen(self.url + "/_config/webhooks/hookshop", data=data, timeout=10)

    def requests(self, method: str, path: str) -> list[str | None]:
        """The idempotency keys of the logged requests to exactly ``method path``."""
        return [key for m, p, key in self.log if m == method and p == path]

    def close(self):
        try:
            self._run(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture(scope="session")
def localstripe_server():
    server = LocalStripe()
    yield server
    server.close()


@pytest.fixture
def localstripe(localstripe_server):
    localstripe_server.reset()
    yield localstripe_server
    localstripe_server.reset()


@pytest.fixture
def stripe_sdk(localstripe):
    """The official SDK pointed at localstripe: what the customer's browser (Stripe.js) or the dashboard does."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe.url}, max_network_retries=0)


@pytest.fixture
def app_config(localstripe, request):
    marker = request.node.get_closest_marker("stripe_capture")
    return {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": localstripe.url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_CAPTURE": marker.args[0] if marker else "automatic",
            "STRIPE_MAX_NETWORK_RETRIES": 0, "STRIPE_TIMEOUT": 10}


@pytest.fixture
def live_server(app):
    """The app served for real on loopback, so that localstripe can POST its webhooks to it."""
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(5)


# ------------------------------------------------------------------ signed events, the way Stripe signs them


def stripe_event(event_type: str, obj: dict, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
            "api_version": "2017-08-15", "created": int(time.time()), "livemode": False,
            "data": {"object": obj}}


def sign(body: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)


def post_event(app, event: dict | str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
               signature: str | None = None, body: str | None = None):
    """POST a Stripe-signed event to the webhook (no API key: the route is public)."""
    raw = body if body is not None else (event if isinstance(event, str) else json.dumps(event, indent=2))
    header = signature if signature is not None else sign(raw, secret, timestamp)
    headers = {"Content-Type": "application/json"}
    if header:
        headers["Stripe-Signature"] = header
    return app.test_client().post("/api/v1/payments/stripe/webhook", data=raw, headers=headers)


def wait_for(predicate, timeout: float = 10.0):
    """Poll (for webhooks that localstripe sends asynchronously); returns the first truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
