"""The OpenAPI document: the error schema, 401 on every protected operation, the
DESIGN minimal contract's paths, and the hand-written serialisers of
``engine/api/serialize.py`` agreeing with the documented schemas."""

from __future__ import annotations

import re
from collections import Counter

import marshmallow as ma
import pytest
from conftest import make_app, order_body, place, product, receive

from engine.api import schemas

SIGNED = re.compile(r"^/api/v1/(payments/\{\}/webhook|channels/\{\}/orders|carriers/\{\}/tracking)$")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")

# the DESIGN minimal REST contract's paths that the core owns (path parameters written {})
CONTRACT = [
    ("post", "/products"), ("get", "/products/{}"),
    ("post", "/stock/receipts"), ("get", "/stock/{}"),
    ("post", "/orders"), ("get", "/orders"), ("get", "/orders/{}"),
    ("post", "/orders/{}/pay"), ("post", "/orders/{}/pick"), ("post", "/orders/{}/pack"),
    ("post", "/orders/{}/confirm"), ("post", "/orders/{}/ship"), ("post", "/orders/{}/deliver"),
    ("post", "/orders/{}/cancel"), ("get", "/orders/{}/rates"), ("get", "/shipments/{}/label.pdf"),
    ("post", "/orders/{}/returns"), ("get", "/customers/{}"), ("get", "/plugins"),
    ("post", "/payments/{}/webhook"), ("post", "/carriers/{}/tracking"),
]


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture
def spec(tmp_path, request):
    """The document is the same on every database: built once per test on SQLite."""
    app = make_app("sqlite", tmp_path, request)
    resp = app.test_client().get("/api/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def resolve(spec, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


# ----------------------------------------------------------------- the document


def test_error_schema_has_string_code_message_and_errors(spec):
    error = spec["components"]["schemas"]["Error"]
    assert error["type"] == "object"
    props = error["properties"]
    assert set(props) == {"code", "message", "errors"}
    assert props["code"]["type"] == "string"  # flask-smorest's integer code is overridden
    assert props["message"]["type"] == "string"
    assert props["errors"]["type"] == "object"
    assert set(error["required"]) == {"code", "message", "errors"}
    assert error.get("additionalProperties") is False
    # flask-smorest's own error responses use it too
    for response in spec["components"].get("responses", {}).values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_protected_operation_documents_401_and_the_api_key(spec):
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme") == "bearer"]
    assert bearer
    checked = 0
    for path, method, op in operations(spec):
        if not path.startswith("/api/v1/"):
            continue
        if SIGNED.match(_norm(path)):
            # the signed webhooks check their own signature, not an API key
            assert not op.get("security", spec.get("security")), (method, path)
            continue
        if op.get("security") == []:  # public on purpose: the customer's return request (order number + e-mail)
            assert (method, path) == ("post", "/api/v1/returns/requests") and "401" not in op["responses"]
            continue
        assert "401" in op["responses"], (method, path)
        content = op["responses"]["401"]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Error"}, (method, path)
        assert any(set(req) & set(bearer) for req in op.get("security", [])), (method, path)
        checked += 1
    assert checked >= 25


def test_every_error_response_uses_the_error_schema(spec):
    for path, method, op in operations(spec):
        for status, response in op["responses"].items():
            if "$ref" in response:  # a shared response of components/responses
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
            if status.startswith(("4", "5")) or status == "default":
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_the_minimal_contract_paths_exist(spec):
    present = {(method, _norm(path)) for path, method, _ in operations(spec)}
    missing = [(m, p) for m, p in CONTRACT if (m, "/api/v1" + p) not in present]
    assert not missing, missing


def test_operations_on_a_resource_document_404(spec):
    for path, method, op in operations(spec):
        if path.startswith("/api/v1/") and "{" in path:
            assert "404" in op["responses"], (method, path)


def test_bodies_and_responses_are_documented(spec):
    for path, method, op in operations(spec):
        if not path.startswith("/api/v1/"):
            continue
        success = [s for s in op["responses"] if s.startswith("2")]
        assert success, (method, path)
        if method == "post" and not SIGNED.match(_norm(path)) and "requestBody" in op:
            schema = resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
            assert schema.get("additionalProperties") is False, (method, path)  # unknown fields are rejected


# ----------------------------------------------------------------- serialisers against the schemas


def check_against_spec(spec, schema: dict, value, where: str = "$") -> None:
    """A small validator for the subset of OpenAPI 3.0 that flask-smorest writes."""
    schema = resolve(spec, schema)
    if value is None:
        assert schema.get("nullable"), f"{where}: null but not nullable"
        return
    kind = schema.get("type")
    if kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
    elif kind == "string":
        assert isinstance(value, str), f"{where}: {value!r} is not a string"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: {value!r} is not a boolean"
    elif kind == "array":
        assert isinstance(value, list), f"{where}: not a list"
        for index, item in enumerate(value):
            check_against_spec(spec, schema["items"], item, f"{where}[{index}]")
    elif kind == "object":
        assert isinstance(value, dict), f"{where}: not an object"
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = set(value) - set(props)
            assert not extra, f"{where}: undocumented keys {sorted(extra)}"
        for name in schema.get("required", []):
            assert name in value, f"{where}: required {name} missing"
        for name, item in value.items():
            if name in props:
                check_against_spec(spec, props[name], item, f"{where}.{name}")


def same_keys(schema: ma.Schema, data, where: str = "$") -> None:
    """Every documented field is present (RAISE already refuses undocumented ones), recursively."""
    if isinstance(data, list):
        for index, item in enumerate(data):
            same_keys(schema, item, f"{where}[{index}]")
        return
    assert set(data) == set(schema.fields), f"{where}: {sorted(set(schema.fields) ^ set(data))}"
    for name, field in schema.fields.items():
        inner = field.inner if isinstance(field, ma.fields.List) else field
        if isinstance(inner, ma.fields.Nested) and data[name] is not None:
            same_keys(inner.schema, data[name], f"{where}.{name}")


def response_schema(spec, method: str, path: str, status: str) -> dict:
    for p, m, op in operations(spec):
        if m == method and _norm(p) == "/api/v1" + path:
            return op["responses"][status]["content"]["application/json"]["schema"]
    raise AssertionError(f"{method} {path} is not documented")


def conforms(spec, method, path, status, resp, schema: ma.Schema | None, *, all_keys: bool = True):
    """The live response loads through the marshmallow schema and validates against the document."""
    assert resp.status_code == int(status), resp.get_json()
    data = resp.get_json()
    check_against_spec(spec, response_schema(spec, method, path, status), data, f"{method} {path}")
    if schema is not None:
        assert schema.Meta.unknown == ma.RAISE
        try:
            schema.load(data)
        except ma.ValidationError as exc:
            raise AssertionError(f"{method} {path}: {exc.messages}") from exc
        if all_keys:
            same_keys(schema, data)
    return data


@pytest.fixture
def rich_shop(api):
    """Data with every optional part filled: barcodes, serials, two locations, a coupon,
    payments, a shipment, a return, an exchange, a held and a cancelled order."""
    product(api, "MUG", price=1290, barcode="4006381333948", reorder_point=1, reorder_quantity=10,
            weight_grams=350, unit_cost=400)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 10)
    receive(api, "MUG", 4, location="BACK")
    receive(api, "PHONE", 3, serials=["P-1", "P-2", "P-3"])
    return api


def _ship(api, oid, scans):
    for action, body in (("pay", {}), ("pick", {"scans": scans}), ("confirm", {}), ("pack", {"scans": scans}),
                         ("ship", {"carrier": "generic", "service": "express"})):
        resp = api.post(f"/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.get_json())
    return resp


def test_serialisers_agree_with_the_documented_schemas(rich_shop, spec):
    api = rich_shop
    conforms(spec, "get", "/products/{}", "200", api.get("/products/MUG"), schemas.ProductOut())
    conforms(spec, "get", "/products/{}", "200", api.get("/products/PHONE"), schemas.ProductOut())
    resp = api.post("/products", {"sku": "CUP", "name": "Cup", "price": 450, "currency": "eur"})
    conforms(spec, "post", "/products", "201", resp, schemas.ProductOut())
    stock = conforms(spec, "get", "/stock/{}", "200", api.get("/stock/MUG"), schemas.StockOut())
    assert len(stock["locations"]) == 2
    conforms(spec, "get", "/stock/{}", "200", api.get("/stock/CUP"), schemas.StockOut())
    conforms(spec, "post", "/stock/receipts", "201",
             api.post("/stock/receipts", {"sku": "CUP", "quantity": 2, "reference": "PO-7", "unit_cost": 100}),
             schemas.StockReceiptOut())

    placed = api.post("/orders", {**_order(["MUG", "PHONE"]), "coupon": "WELCOME10", "gift": True,
                                  "external_id": "ext-1", "channel": "shop"})
    order = conforms(spec, "post", "/orders", "201", placed, schemas.OrderOut())
    assert order["coupon"] and order["gift"] and order["flags"]
    oid = order["id"]
    resp = _ship(api, oid, ["MUG", "P-2"])
    shipped = conforms(spec, "post", "/orders/{}/ship", "200", resp, schemas.OrderOut())
    assert shipped["shipments"] and shipped["payments"] and shipped["lines"][1]["serials"] == ["P-2"]
    # the redelivered channel order answers 200 with the same shape
    conforms(spec, "post", "/orders", "200",
             api.post("/orders", {**_order(["MUG", "PHONE"]), "coupon": "WELCOME10", "gift": True,
                                  "external_id": "ext-1", "channel": "shop"}), schemas.OrderOut())
    rates = conforms(spec, "get", "/orders/{}/rates", "200", api.get(f"/orders/{oid}/rates"),
                     schemas.RateOut(many=True), all_keys=False)
    assert rates
    for rate in rates:
        same_keys(schemas.RateOut(), rate)

    ret = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "chipped",
                                              "resolution": "refund"})
    ret = conforms(spec, "post", "/orders/{}/returns", "201", ret, schemas.ReturnOut())
    conforms(spec, "get", "/returns/{}", "200", api.get(f"/returns/{ret['id']}"), schemas.ReturnOut())
    received = api.post(f"/returns/{ret['id']}/receive", {})
    assert conforms(spec, "post", "/returns/{}/receive", "200", received, schemas.ReturnOut())["status"] == "resolved"
    ret = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-2"]}],
                                              "reason": "wrong model", "resolution": "exchange"}).get_json()
    exchanged = conforms(spec, "post", "/returns/{}/receive", "200", api.post(f"/returns/{ret['id']}/receive", {}),
                         schemas.ReturnOut())
    assert exchanged["replacement_order_id"]
    replacement = conforms(spec, "get", "/orders/{}", "200", api.get(f"/orders/{exchanged['replacement_order_id']}"),
                           schemas.OrderOut())
    assert replacement["replacement_for"] == oid

    full = conforms(spec, "get", "/orders/{}", "200", api.get(f"/orders/{oid}"), schemas.OrderOut())
    assert full["totals"]["refunded"] > 0 and full["events"]

    held = place(api, [("MUG", 1)])["id"]
    conforms(spec, "post", "/orders/{}/hold", "200", api.post(f"/orders/{held}/hold", {"reason": "check address"}),
             schemas.OrderOut())
    cancelled = place(api, [("MUG", 1)])["id"]
    api.post(f"/orders/{cancelled}/pay")
    conforms(spec, "post", "/orders/{}/cancel", "200", api.post(f"/orders/{cancelled}/cancel", {"reason": "no"}),
             schemas.OrderOut())

    page = api.get("/orders?limit=2")
    data = conforms(spec, "get", "/orders", "200", page, schemas.OrderPage(), all_keys=False)
    assert data["next_cursor"] and len(data["items"]) == 2
    for item in data["items"]:  # list items leave the timeline and the refunds out
        assert set(item) == set(schemas.OrderOut().fields) - {"events", "refunds"}
    conforms(spec, "get", "/orders", "200", api.get(f"/orders?cursor={data['next_cursor']}&limit=500"),
             schemas.OrderPage(), all_keys=False)

    customer = conforms(spec, "get", "/customers/{}", "200", api.get(f"/customers/{order['customer']['id']}"),
                        schemas.CustomerOut())
    assert customer["history"] and customer["order_count"] >= 1

    plugins = conforms(spec, "get", "/plugins", "200", api.get("/plugins"), schemas.PluginOut(many=True),
                       all_keys=False)
    for plugin in plugins:
        same_keys(schemas.PluginOut(), plugin)
    assert {"payments_manual", "carrier_generic"} <= {p["name"] for p in plugins}

    # a label of a carrier that made none is a documented 404 in the error format
    label = api.get(shipped["shipments"][0]["label_url"].removeprefix("/api/v1"))
    assert label.status_code in (200, 404)
    if label.status_code == 404:
        check_against_spec(spec, {"$ref": "#/components/schemas/Error"}, label.get_json())


def test_a_generic_shipment_has_a_pdf_label(rich_shop):
    api = rich_shop
    oid = place(api, [("MUG", 1)])["id"]
    shipped = _ship(api, oid, ["MUG"]).get_json()
    label = api.get(shipped["shipments"][0]["label_url"].removeprefix("/api/v1"))
    assert label.status_code == 200
    assert label.mimetype == "application/pdf" and label.data.startswith(b"%PDF")


def test_error_responses_agree_with_the_error_schema(rich_shop, spec):
    api = rich_shop
    error = {"$ref": "#/components/schemas/Error"}
    for resp in (api.get("/orders/999"), api.post("/orders", {"lines": []}),
                 api.post("/orders", _order(["MUG"] * 50)),
                 api.post("/orders", data="{", headers={"Content-Type": "application/json"}),
                 api.client.get("/api/v1/orders"), api.client.delete("/api/v1/orders", headers=api._headers(None))):
        assert resp.status_code >= 400
        check_against_spec(spec, error, resp.get_json())
        schemas.ErrorSchema().load(resp.get_json())


def _order(skus):
    return order_body(list(Counter(skus).items()))
