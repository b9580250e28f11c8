"""Helpers of the channel_webhook tests: signed senders written from each platform's documentation
(not with the plugin's code), sample payloads, and a loopback receiver for outbound webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SAMPLES = Path(__file__).parent / "samples"
LOOPBACK = "127.0.0.0/8,::1/128"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def platform_hmac(secret: str, body: bytes) -> str:
    """Shopify's and WooCommerce's documented signature: base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def as_body(payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def shopify_headers(secret: str, body: bytes, webhook_id: str | None = None, topic: str = "orders/create") -> dict:
    return {"Content-Type": "application/json", "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": platform_hmac(secret, body), "X-Shopify-Shop-Domain": "example.myshopify.com",
            "X-Shopify-API-Version": "2024-07", "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": datetime.now(UTC).isoformat()}


def woo_headers(secret: str, body: bytes, delivery_id: str | None = None, topic: str = "order.created") -> dict:
    return {"Content-Type": "application/json", "X-WC-Webhook-Source": "https://shop.example.com/",
            "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": topic.split(".")[0],
            "X-WC-Webhook-Event": topic.split(".")[1], "X-WC-Webhook-Signature": platform_hmac(secret, body),
            "X-WC-Webhook-ID": "12", "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex}


def standard_headers(secret: str, body: bytes, msg_id: str | None = None, at: datetime | None = None) -> dict:
    """Signed by the standardwebhooks reference library."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {"Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def post_channel(client, name: str, body: bytes, headers: dict):
    return client.post(f"/api/v1/channels/{name}/orders", data=body, headers=headers)


# ----------------------------------------------------------------- the loopback receiver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what it gets and answers the next scripted status.

    It starts down (nothing listens on its port) until ``start()``."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.received: list[dict] = []
        self.script: list[int] = []
        self.default = 200
        self.on_request = None
        self._server = None
        self._thread = None
        self._lock = threading.Lock()

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            entry = {"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body,
                     "path": request.path, "at": time.time()}
            if self.on_request is not None:
                entry["seen"] = self.on_request(entry)
            self.received.append(entry)
            status = self.script.pop(0) if self.script else self.default
        return Response(json.dumps({"ok": status < 300}), status=status, mimetype="application/json")(
            environ, start_response)

    def start(self):
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None
