"""The serial, scan and receipt responses load through their schemas and match the OpenAPI document."""

from __future__ import annotations

from conftest import place, product, receive
from test_openapi import conforms, spec  # noqa: F401 - the fixture

from engine.api import schemas
from engine.api import serials as serial_api


def test_serial_scan_and_generated_receipt_responses_are_documented(api, spec):  # noqa: F811
    product(api, "PHONE", price=59900, track_serials=True)
    receipt = api.post("/stock/receipts", {"sku": "PHONE", "quantity": 2, "generate": True})
    body = conforms(spec, "post", "/stock/receipts", "201", receipt, schemas.StockReceiptOut())
    first = body["generated"]["first"]
    place(api, [("PHONE", 1)])
    unit = conforms(spec, "get", "/serials/{}", "200", api.get(f"/serials/{first}"), serial_api.SerialOut())
    assert unit["order_number"] and [e["kind"] for e in unit["history"]] == ["received", "reserved"]
    conforms(spec, "get", "/products/{}/serials", "200", api.get("/products/PHONE/serials"), serial_api.SerialPage())
    conforms(spec, "get", "/scan/{}", "200", api.get(f"/scan/{first}"), None)
    for path in ("/serials/NOPE", "/scan/NOPE"):
        resp = api.get(path)
        assert resp.status_code == 404 and set(resp.get_json()) == {"code", "message", "errors"}
    receive(api, "PHONE", 1, serials=["X-1"])
    assert api.get("/products/PHONE/serials?limit=1").get_json()["next_cursor"]
