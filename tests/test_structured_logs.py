"""JSON logs in production: one object per line with the request id, and nothing a log may not hold
(API keys, secrets, card numbers, full e-mail addresses) over a whole order life."""

from __future__ import annotations

import io
import json
import logging

import pytest
from conftest import ApiClient, new_key, product, receive

from engine import hookimpl, structured_logs


class ChattyPlugin:
    """Logs what a careless plugin might: the customer's address, a secret, a card number."""

    @hookimpl
    def order_placed(self, order, event):
        logging.getLogger("hookshop.chatty").warning(
            "placed %s for %s, stripe key sk_live_abcdefghijklmnop, card 4242 4242 4242 4242",
            order.number, order.email)


@pytest.fixture
def app_config():
    return {"LOG_FORMAT": "json", "EXTRA_PLUGINS": [("chatty", ChattyPlugin())]}


@pytest.fixture
def log_lines(app):
    stream = io.StringIO()
    structured_logs.configure(app, stream)
    yield lambda: [line for line in stream.getvalue().splitlines() if line]
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "hookshop"]:
        root.removeHandler(handler)


def test_a_whole_order_life_logs_json_lines_with_request_ids_and_no_secret_or_address(app, log_lines):
    key = new_key(app)
    api = ApiClient(app.test_client(), key)
    product(api, "MUG", price=1200, barcode="4006381333948")
    receive(api, "MUG", 5)
    body = {"customer": {"email": "ann.customer@example.com", "name": "Ann Example",
                         "shipping_address": {"line1": "Sample Street 12", "city": "Berlin", "postal_code": "10115",
                                              "country": "DE"}},
            "lines": [{"sku": "MUG", "quantity": 1}]}
    resp = api.post("/orders", body, headers={"X-Request-Id": "lb-4711"})
    assert resp.status_code == 201 and resp.headers["X-Request-Id"] == "lb-4711"
    oid = resp.get_json()["id"]
    for path, payload in ((f"/orders/{oid}/pay", {}), (f"/orders/{oid}/pick", {"scans": ["MUG"]}),
                          (f"/orders/{oid}/confirm", {}), (f"/orders/{oid}/pack", {"scans": ["MUG"]}),
                          (f"/orders/{oid}/ship", {"carrier": "generic", "service": "standard"}),
                          (f"/orders/{oid}/deliver", {})):
        resp = api.post(path, payload)
        assert resp.status_code == 200, (path, resp.get_json())
        assert len(resp.headers["X-Request-Id"]) == 32  # a fresh id when the caller sent none
    # a hostile request id is replaced, not logged
    resp = api.get(f"/orders/{oid}", headers={"X-Request-Id": "x\" injected: yes" + "a" * 80})
    assert resp.headers["X-Request-Id"] != "x\" injected: yes" + "a" * 80
    app.test_client().get("/api/v1/orders", headers={"Authorization": f"Bearer {key}x"})  # a wrong key: 401

    lines = log_lines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [e for e in entries if e["logger"] == "hookshop.requests"]
    assert {e["path"] for e in requests} >= {"/api/v1/orders", f"/api/v1/orders/{oid}/ship"}
    assert all(e["request_id"] and isinstance(e["duration_ms"], float) for e in requests)
    placed = next(e for e in requests if e["path"] == "/api/v1/orders" and e["method"] == "POST")
    assert placed["request_id"] == "lb-4711" and placed["status"] == 201
    assert any(e["status"] == 401 for e in requests)
    chatty = next(e for e in entries if e["logger"] == "hookshop.chatty")
    assert "a***@example.com" in chatty["message"]
    text = "\n".join(lines)
    for secret in (key, key[:12], "ann.customer@example.com", "sk_live_abcdefghijklmnop", "4242 4242 4242 4242",
                   "Sample Street", "injected"):
        assert secret not in text, secret


def test_text_format_redacts_too_and_names_the_request(app, log_lines):
    app.config["LOG_FORMAT"] = "text"
    structured_logs.configure(app, stream := io.StringIO())
    with app.test_request_context("/api/v1/orders"):
        app.preprocess_request()
        logging.getLogger("hookshop.test").error("failed for bob@example.org with whsec_c2VjcmV0c2VjcmV0")
    line = stream.getvalue().strip()
    assert "ERROR hookshop.test" in line and "b***@example.org" in line and "whsec_" not in line
    assert "[request " in line
