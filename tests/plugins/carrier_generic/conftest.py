"""Fixtures of the carrier_generic tests: a shop walked to ``packed``, signed tracking deliveries,
and a fake carrier API served for real on loopback."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import uuid

import pytest
from conftest import SUPPORT_ADDRESS, order_body, product, receive
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from plugins.carrier_generic.tracking import signed_headers

SECRET = "whsec_" + base64.b64encode(b"carrier-generic-tracking-test-key").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else-entirely-different").decode()


def address(country="DE", postal_code="10115", city="Berlin", line1="Sample Street 12"):
    return {"line1": line1, "city": city, "postal_code": postal_code, "country": country}


def shop(api):
    """Products of known weights: MUG 400 g, BOOK 900 g, LAMP 2500 g, ANVIL 30 kg."""
    for sku, price, grams in (("MUG", 1290, 400), ("BOOK", 2400, 900), ("LAMP", 4900, 2500),
                              ("ANVIL", 900, 30000)):
        product(api, sku, price=price, weight_grams=grams)
        receive(api, sku, 20)


def place_to(api, lines, *, status="packed", to=None, **extra):
    """Place an order (shipping to ``to``) and walk it to ``status`` (placed, paid, packed)."""
    body = order_body(lines, **extra)
    body["customer"]["shipping_address"] = dict(to or SUPPORT_ADDRESS)
    resp = api.post("/orders", body)
    assert resp.status_code == 201, resp.get_json()
    order = resp.get_json()
    if status == "placed":
        return order
    oid = order["id"]
    assert api.post(f"/orders/{oid}/pay").status_code == 200
    if status == "paid":
        return api.get(f"/orders/{oid}").get_json()
    scans = [sku for sku, qty in lines for _ in range(qty)]
    assert api.post(f"/orders/{oid}/pick", {"scans": scans}).status_code == 200
    assert api.post(f"/orders/{oid}/confirm").status_code == 200
    resp = api.post(f"/orders/{oid}/pack", {"scans": scans})
    assert resp.status_code == 200 and resp.get_json()["status"] == "packed", resp.get_json()
    return resp.get_json()


def ship(api, oid, carrier="generic", service="standard", expect=200):
    resp = api.post(f"/orders/{oid}/ship", {"carrier": carrier, "service": service})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def post_event(client, body, *, secret=SECRET, webhook_id=None, timestamp=None, carrier="generic",
               headers=None, raw=None):
    """Send a tracking event signed like a carrier would (Standard Webhooks)."""
    raw = json.dumps(body).encode() if raw is None else raw
    signed = signed_headers(secret, raw, webhook_id or f"msg_{uuid.uuid4().hex}", timestamp)
    return client.post(f"/api/v1/carriers/{carrier}/tracking", data=raw,
                       headers={"Content-Type": "application/json", **signed, **(headers or {})})


def kinds(order):
    return [e["kind"] for e in order["events"]]


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeCarrier:
    """A carrier's JSON API on 127.0.0.1: down until ``start()``; ``script`` holds the next answers
    (an int status, "slow" or "ok"); every request is kept in ``requests``."""

    LABEL = None

    def __init__(self, port: int):
        self.port, self.server, self.thread = port, None, None
        self.script: list = []
        self.requests: list[dict] = []
        self.shipments: dict[str, dict] = {}  # by Idempotency-Key
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.server = make_server("127.0.0.1", self.port, self.wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    @Request.application
    def wsgi(self, request):
        with self.lock:
            self.requests.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                                  "json": request.get_json(silent=True)})
            step = self.script.pop(0) if self.script else "ok"
        if step == "slow":
            time.sleep(1.0)
            step = "ok"
        if isinstance(step, int):
            return Response(json.dumps({"message": f"scripted failure {step}"}), status=step,
                            mimetype="application/json")
        if request.method == "DELETE":
            return Response(json.dumps({"cancelled": True}), mimetype="application/json")
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            if key not in self.shipments:
                number = f"FC{len(self.shipments) + 1:09d}"
                self.shipments[key] = {"id": f"shp_{len(self.shipments) + 1}", "tracking": {"number": number},
                                       "eta": "2031-03-04", "cost": 777}
                if self.LABEL:
                    self.shipments[key]["label"] = base64.b64encode(self.LABEL).decode()
            answer = self.shipments[key]
        return Response(json.dumps(answer), status=201, mimetype="application/json")


@pytest.fixture
def fake_carrier():
    server = FakeCarrier(free_port())
    yield server
    server.stop()
