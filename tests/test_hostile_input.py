"""Hostile input never reaches a 5xx: the body size limit (413 before a webhook body is read), NUL
characters, lone surrogates, JSON nesting, 64-bit integers and ids, bounded strings (engine/api/limits.py).

The size limit is tested against live servers (werkzeug's and waitress, as ``hookshop serve`` configures
it); the rest through the test client. Every refusal changes nothing."""

from __future__ import annotations

import base64
import http.client
import json
import threading

import pytest
import waitress
from conftest import live_server, order_body, place, product, receive
from test_api_errors import assert_error, assert_unchanged, snapshot

from engine.api import Blueprint
from engine.api.limits import INT64_MAX
from engine.app import create_app
from engine.cli import waitress_options
from engine.config import load_settings

MIB = 1024 * 1024
TRACKING_SECRET = "whsec_" + base64.b64encode(b"hostile-input-tracking-secret").decode()
SIGNED_PATHS = ["/api/v1/payments/stripe/webhook", "/api/v1/channels/shop/orders",
                "/api/v1/carriers/generic/tracking"]


@pytest.fixture
def app_config(tmp_path):
    # every signed endpoint is live: Stripe (its API on a closed loopback port: no call leaves the machine),
    # the generic carrier's tracking secret; the channel is created by the `signed` fixture
    return {"STRIPE_SECRET_KEY": "sk_test_hostile", "STRIPE_WEBHOOK_SECRET": "whsec_hostile",
            "STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_MAX_NETWORK_RETRIES": 0,
            "CARRIER_GENERIC_TRACKING_SECRET": TRACKING_SECRET}


@pytest.fixture
def signed(api):
    """A generic channel named 'shop', so that all three signed endpoints exist."""
    resp = api.post("/channels", {"name": "shop", "format": "generic"})
    assert resp.status_code == 201, resp.get_json()
    return api


def _post_head(base: str, path: str, headers: dict) -> http.client.HTTPConnection:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", path)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    return conn


def _send_chunks(conn: http.client.HTTPConnection, total: int, chunk_size: int = 64 * 1024) -> None:
    """Send ``total`` bytes of a JSON array in chunks, without the last chunk: the body never ends."""
    sent = 0
    try:
        while sent < total:
            chunk = (b"[" if sent == 0 else b" ") + b" " * (chunk_size - 1)
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while we were still sending: the answer is what counts


def _json_413(resp: http.client.HTTPResponse) -> None:
    assert resp.status == 413, (resp.status, resp.read()[:300])
    assert resp.getheader("Content-Type") == "application/json"
    body = json.loads(resp.read())
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == "request_entity_too_large"
    assert str(MIB) in body["message"]


# ----------------------------------------------------------------- the body size limit


def test_the_limits_default_to_one_mebibyte_and_32_levels_and_come_from_the_environment(app):
    assert app.config["MAX_CONTENT_LENGTH"] == MIB
    assert app.config["JSON_MAX_DEPTH"] == 32
    settings = load_settings(environ={"HOOKSHOP_MAX_CONTENT_LENGTH": "65536", "HOOKSHOP_JSON_MAX_DEPTH": "8"})
    assert settings["MAX_CONTENT_LENGTH"] == 65536 and settings["JSON_MAX_DEPTH"] == 8
    # waitress refuses a body of max_request_body_size bytes or more, Flask one of more than the limit
    assert waitress_options(app)["max_request_body_size"] == MIB + 1


@pytest.mark.parametrize("path", SIGNED_PATHS + ["/api/v1/orders"])
def test_a_declared_oversized_body_is_413_before_a_byte_of_it_is_read(signed, app, path):
    before = snapshot(app)
    with live_server(app) as base:
        # the headers only: the server must answer without waiting for the body it was promised
        conn = _post_head(base, path, {"Content-Type": "application/json", "Content-Length": str(400 * MIB),
                                       "Authorization": f"Bearer {signed.key}"})
        _json_413(conn.getresponse())
        conn.close()
    assert_unchanged(app, before, f"oversized body to {path}")


@pytest.mark.parametrize("path", SIGNED_PATHS)
def test_a_chunked_body_that_grows_past_the_limit_is_413_without_waiting_for_its_end(signed, app, path):
    before = snapshot(app)
    with live_server(app) as base:
        conn = _post_head(base, path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        _send_chunks(conn, MIB + 128 * 1024)  # and never the terminating chunk
        _json_413(conn.getresponse())
        conn.close()
    assert_unchanged(app, before, f"chunked oversized body to {path}")


def test_a_body_of_exactly_the_limit_is_read_and_reaches_the_signature_check(signed, app):
    body = b"{}" + b" " * (MIB - 2)
    with live_server(app) as base:
        conn = _post_head(base, "/api/v1/carriers/generic/tracking",
                          {"Content-Type": "application/json", "Content-Length": str(len(body))})
        conn.send(body)
        resp = conn.getresponse()
        assert resp.status == 401, resp.read()[:300]  # not 413: the carrier plugin refused the signature
        conn.close()


@pytest.fixture
def waitress_server(signed, app):
    """The app on waitress with the options of ``hookshop serve``."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, **waitress_options(app, threads=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(10)


@pytest.mark.parametrize("path", SIGNED_PATHS)
def test_waitress_refuses_an_oversized_body_itself_declared_or_chunked(waitress_server, app, path):
    before = snapshot(app)
    conn = _post_head(waitress_server, path, {"Content-Type": "application/json",
                                              "Content-Length": str(400 * MIB)})
    resp = conn.getresponse()
    assert resp.status == 413  # waitress's own plain-text answer: the app never sees the request
    conn.close()
    conn = _post_head(waitress_server, path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    _send_chunks(conn, MIB + 128 * 1024)
    assert conn.getresponse().status == 413
    conn.close()
    # and exactly the limit passes waitress and Flask both: the plugin answers (a wrong signature)
    body = b"{}" + b" " * (MIB - 2)
    conn = _post_head(waitress_server, path, {"Content-Type": "application/json", "Content-Length": str(len(body))})
    conn.send(body)
    resp = conn.getresponse()
    assert resp.status in (400, 401), (resp.status, resp.read()[:300])
    conn.close()
    assert_unchanged(app, before, f"oversized bodies to {path} on waitress")


def test_a_smaller_limit_is_applied_by_the_test_client_too(tmp_path, request, database):
    from conftest import make_app

    small = make_app(database, tmp_path, request, MAX_CONTENT_LENGTH=1000)
    resp = small.test_client().post("/api/v1/carriers/generic/tracking", data=b"[" + b" " * 1000 + b"]",
                                    content_type="application/json")
    assert_error(resp, 413, "request_entity_too_large")


# ----------------------------------------------------------------- NUL characters and lone surrogates


def _product(**extra) -> dict:
    return {"sku": "MUG", "name": "Mug", "price": 1290, "currency": "EUR", **extra}


def _raw_post(api, path: str, raw: bytes, content_type: str = "application/json", headers: dict | None = None):
    return api.client.post("/api/v1" + path, data=raw, content_type=content_type, headers=api._headers(headers))


def test_nul_in_a_json_string_is_400_and_changes_nothing(api, app):
    before = snapshot(app)
    assert_error(api.post("/products", _product(name="Mu\u0000g")), 400, "nul_character")
    assert_error(api.post("/orders", order_body([("MUG", 1)], email="a\u0000@example.com")), 400, "nul_character")
    # three backslashes: an escaped backslash, then the NUL escape
    assert_error(_raw_post(api, "/products", b'{"sku": "MUG", "name": "Mu\\\\\\u0000g", "price": 1, '
                           b'"currency": "EUR"}'), 400, "nul_character")
    assert_error(_raw_post(api, "/products", b'{"sku": "MUG", "name": "Mu\x00g"}'), 400, "nul_character")
    assert_unchanged(app, before, "NUL in JSON")


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(api):
    resp = _raw_post(api, "/products", b'{"sku": "MUG", "name": "C:\\\\u0000", "price": 1, "currency": "EUR"}')
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["name"] == "C:\\u0000"


def test_nul_in_the_path_the_query_and_a_header_is_400(api, app):
    before = snapshot(app)
    assert_error(api.get("/products/MU%00G"), 400, "nul_character")
    assert_error(api.get("/orders?channel=a%00b"), 400, "nul_character")
    assert_error(api.get("/orders?%00=1"), 400, "nul_character")
    assert_error(api.post("/products", _product(), headers={"Idempotency-Key": "k\x00"}), 400, "nul_character")
    assert_unchanged(app, before, "NUL in path, query, header")


@pytest.mark.parametrize("path", SIGNED_PATHS)
def test_signed_webhooks_are_screened_for_nul_before_their_signature_is_checked(signed, app, path):
    before = snapshot(app)
    for raw, content_type in ((b'{"id": "evt_1", "type": "x\\u0000"}', "application/json"),
                              (b"webhook_id=1%00", "application/x-www-form-urlencoded")):
        resp = signed.client.post(path, data=raw, content_type=content_type)
        assert_error(resp, 400, "nul_character")
    assert_unchanged(app, before, f"NUL to {path}")


def test_a_lone_surrogate_is_400_and_a_pair_is_a_character(api, app):
    before = snapshot(app)
    # the last: a high surrogate, an escaped backslash, a low surrogate (two lone ones, not a pair)
    for escape in (b"\\ud800", b"\\uDFFF", b"\\ud83d x", b"x \\ude00", b"\\ud83d\\\\\\ude00"):
        resp = _raw_post(api, "/products", b'{"sku": "MUG", "name": "Mug ' + escape + b'", "price": 1, '
                         b'"currency": "EUR"}')
        assert_error(resp, 400, "invalid_unicode")
    assert_unchanged(app, before, "lone surrogates")
    resp = _raw_post(api, "/products", b'{"sku": "MUG", "name": "Mug \\ud83d\\ude00", "price": 1, "currency": "EUR"}')
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["name"] == "Mug \U0001f600"
    assert api.get("/products/MUG").get_json()["name"] == "Mug \U0001f600"


# ----------------------------------------------------------------- JSON nesting


def _nested(depth: int, inner: str = "1") -> str:
    return '{"a": ' * depth + inner + "}" * depth


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/products"] + SIGNED_PATHS)
def test_json_nested_a_thousand_deep_is_400_not_a_recursion_error(signed, app, path):
    before = snapshot(app)
    for raw in ("[" * 1000 + "]" * 1000, _nested(1000), "[" * (MIB - 10)):
        resp = signed.client.post(path, data=raw, content_type="application/json", headers=signed._headers(None))
        errors = assert_error(resp, 400, "json_too_deep")
        assert errors == {"_body": ["at most 32 levels of arrays and objects"]}
    assert_unchanged(app, before, f"deep JSON to {path}")


def test_the_depth_limit_is_exact_and_ignores_brackets_inside_strings(api):
    customer = order_body([("MUG", 1)])["customer"]
    at_limit = json.dumps({"customer": customer})[:-1] + ', "x": ' + _nested(31) + "}"  # 32 levels in all
    errors = assert_error(_raw_post(api, "/orders", at_limit.encode()), 422, "validation_error")
    assert "x" in errors  # parsed and validated: the unknown field, not the depth
    over = json.dumps({"customer": customer})[:-1] + ', "x": ' + _nested(32) + "}"
    assert_error(_raw_post(api, "/orders", over.encode()), 400, "json_too_deep")
    brackets = "[{" * 200 + '\\"' + "}]" * 10
    resp = api.post("/products", _product(name=brackets[:200]))
    assert resp.status_code == 201, resp.get_json()


@pytest.fixture
def shallow_app(tmp_path, request, database):
    from conftest import make_app

    return make_app(database, tmp_path, request, JSON_MAX_DEPTH=3)


def test_the_depth_limit_is_configurable(shallow_app):
    from conftest import ApiClient, new_key

    api = ApiClient(shallow_app.test_client(), new_key(shallow_app))
    assert api.post("/products", _product()).status_code == 201
    resp = api.post("/orders", order_body([("MUG", 1)]))  # customer.shipping_address: 3 levels
    assert resp.status_code != 400, resp.get_json()
    errors = assert_error(api.post("/orders", order_body([("MUG", 1)], customer={"a": {"b": {"c": 1}}})),
                          400, "json_too_deep")
    assert errors == {"_body": ["at most 3 levels of arrays and objects"]}


# ----------------------------------------------------------------- integers and ids


def test_an_integer_longer_than_python_converts_is_invalid_json(api, app):
    before = snapshot(app)
    raw = b'{"sku": "MUG", "name": "Mug", "currency": "EUR", "price": ' + b"9" * 5000 + b"}"
    assert_error(_raw_post(api, "/products", raw), 400, "invalid_json")
    assert_unchanged(app, before, "5000-digit integer")


@pytest.mark.parametrize("field, value", [
    ("price", 10**12 + 1), ("price", 2**63), ("reorder_point", 2**63), ("reorder_quantity", 2**70),
    ("weight_grams", 10**9 + 1), ("unit_cost", 2**64), ("reorder_point", -1)])
def test_integers_beyond_their_bounds_are_422(api, app, field, value):
    before = snapshot(app)
    errors = assert_error(api.post("/products", _product(**{field: value})), 422, "validation_error")
    assert set(errors) == {field}, errors
    assert_unchanged(app, before, f"{field}={value}")


def test_the_largest_amounts_are_stored_and_read_back(api):
    resp = api.post("/products", _product(price=10**12, unit_cost=10**12, reorder_point=10**9,
                                          reorder_quantity=10**9, weight_grams=10**9))
    assert resp.status_code == 201, resp.get_json()
    assert api.get("/products/MUG").get_json()["price"] == 10**12


def test_an_order_whose_total_passes_the_money_bound_is_422(api, app):
    product(api, "GOLD", price=10**12)
    receive(api, "GOLD", 5)
    before = snapshot(app)
    errors = assert_error(api.post("/orders", order_body([("GOLD", 2)])), 422, "validation_error")
    assert "lines" in errors
    assert_unchanged(app, before, "order over the money bound")
    assert place(api, [("GOLD", 1)])["totals"]["total"] == 10**12


@pytest.mark.parametrize("query", [
    "customer=9223372036854775808", "customer=99999999999999999999999", "customer=0", "customer=+1",
    "customer=%201", "customer=1_000", "customer=1.0", "customer=%D9%A1", "limit=501", "limit=0",
    "cursor=9999999999999999999", "cursor=-1"])
def test_query_integers_are_ascii_digits_within_64_bits(api, query):
    assert_error(api.get(f"/orders?{query}"), 422, "validation_error")


def test_the_largest_query_integer_is_accepted(api):
    resp = api.get(f"/orders?customer={INT64_MAX}")
    assert resp.status_code == 200 and resp.get_json()["items"] == []


ID_PATHS = ["/orders/{}", "/orders/{}/rates", "/returns/{}", "/customers/{}", "/shipments/{}/label.pdf",
            "/accounting/entries/{}", "/accounting/receipts/{}", "/webhooks/subscriptions/{}",
            "/webhooks/deliveries/{}", "/shipments/{}/tracking", "/orders/{}/packing-slip.pdf"]


def test_ids_beyond_a_64_bit_column_are_404(api):
    for path in ID_PATHS:
        for value in ("2147483648", str(INT64_MAX), str(INT64_MAX + 1), "9" * 5000, "%D9%A1"):
            assert_error(api.get(path.format(value)), 404, "not_found")
    for path in ("/orders/{}/pay", "/orders/{}/cancel", "/returns/{}/receive", "/admin/api-keys/{}/revoke",
                 "/webhooks/deliveries/{}/redeliver"):
        for value in ("2147483648", str(INT64_MAX + 1)):
            assert_error(api.post(path.format(value), {}), 404, "not_found")


def test_path_ids_are_documented_as_int64(api):
    spec = api.client.get("/api/openapi.json").get_json()
    ids = [p for item in spec["paths"].values() for p in item.get("parameters", [])
           if p["in"] == "path" and p["schema"]["type"] == "integer"]
    assert len(ids) >= 20
    for param in ids:
        assert param["schema"] == {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT64_MAX}, param


def test_posting_a_product_with_an_idempotency_key_answers_its_id(api):
    first = api.post("/products", _product(), headers={"Idempotency-Key": "product-1"})
    assert first.status_code == 201 and isinstance(first.get_json()["id"], int), first.get_json()
    again = api.post("/products", _product(), headers={"Idempotency-Key": "product-1"})
    assert again.get_json() == first.get_json()


# ----------------------------------------------------------------- every input is bounded (a guard)


def _resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _unbounded(spec, schema, where) -> list[str]:
    """What in a request schema has no bound: a string without maxLength, an integer beyond 64 bits, ..."""
    schema = _resolve(spec, schema)
    if "enum" in schema:
        return []
    if "anyOf" in schema:
        return [p for i, alt in enumerate(schema["anyOf"]) for p in _unbounded(spec, alt, f"{where}|{i}")]
    kind = schema.get("type")
    if kind == "integer":
        ok = -(2**63) <= schema.get("minimum", -(2**64)) and schema.get("maximum", 2**64) <= INT64_MAX
        return [] if ok else [f"{where}: integer without 64-bit bounds"]
    if kind == "string":
        ok = "maxLength" in schema or schema.get("format") in ("date", "date-time")
        return [] if ok else [f"{where}: string without maxLength"]
    if kind == "boolean":
        return []
    if kind == "array":
        found = [] if "maxItems" in schema else [f"{where}: array without maxItems"]
        return found + _unbounded(spec, schema.get("items", {}), where + "[]")
    if kind == "object":
        found = [p for name, prop in schema.get("properties", {}).items()
                 for p in _unbounded(spec, prop, f"{where}.{name}")]
        extra = schema.get("additionalProperties")
        if extra is False:
            return found
        if "maxProperties" not in schema:
            found.append(f"{where}: object without maxProperties")
        return found + (_unbounded(spec, extra, where + ".*") if isinstance(extra, dict)
                        else [f"{where}.*: any value"])
    return [f"{where}: a value of any type"]


def test_every_documented_input_is_bounded(api):
    """Every parameter and request body of every operation, the plugins' included."""
    spec = api.client.get("/api/openapi.json").get_json()
    found, checked = [], 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for param in item.get("parameters", []) + op.get("parameters", []):
                found += _unbounded(spec, param["schema"], f"{method} {path} {param['in']}:{param['name']}")
                checked += 1
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                found += _unbounded(spec, body, f"{method} {path} body")
                checked += 1
    assert checked >= 60
    assert not found, "\n".join(found)


def test_every_documented_blueprint_uses_hookshops_argument_parser(app):
    documented = [bp for bp in app.blueprints.values() if hasattr(bp, "register_views_in_doc")]
    assert len(documented) >= 9
    plain = [bp.name for bp in documented if not isinstance(bp, Blueprint)]
    assert not plain, f"use engine.api.Blueprint (hookshop's JSON parser) in {plain}"


def test_create_app_does_not_need_a_request_to_know_its_limits(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                      "MAX_CONTENT_LENGTH": "2048"})
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    assert waitress_options(app, threads=3) == {"threads": 3, "ident": "hookshop", "max_request_body_size": 2049}


# ----------------------------------------------------------------- what schemathesis found (tests/test_schemathesis.py)


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_booleans_are_json_true_or_false_only(api, app, value):
    before = snapshot(app)
    errors = assert_error(api.post("/products", _product(allow_backorder=value)), 422, "validation_error")
    assert set(errors) == {"allow_backorder"}
    assert_unchanged(app, before, f"allow_backorder={value!r}")


def test_a_static_route_is_not_also_a_name_of_its_templated_sibling(signed):
    api = signed
    # /stock/receipts takes POST only: GET is a 405 (not the stock of a product called receipts) ...
    resp = api.get("/stock/receipts")
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" not in resp.headers["Allow"] and "POST" in resp.headers["Allow"]
    # ... and no product may take the name
    errors = assert_error(api.post("/products", _product(sku="receipts")), 422, "validation_error")
    assert set(errors) == {"sku"}
    # /channels/sales is GET only; the channel routes beside it never take "sales" for a name
    resp = api.client.patch("/api/v1/channels/sales", json={}, headers=api._headers(None))
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"].replace(" ", "").split(",").count("PATCH") == 0
    assert api.get("/channels/sales").status_code == 200
    assert api.get("/channels/shop").status_code == 200
    spec = api.client.get("/api/openapi.json").get_json()
    (sku,) = spec["paths"]["/api/v1/stock/{sku}"]["parameters"]
    assert sku["schema"] == {"type": "string", "minLength": 1, "maxLength": 64}
