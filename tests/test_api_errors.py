"""The REST contract's bad inputs: each gets the right 4xx, a field-by-field
error body of exactly ``{"code", "message", "errors"}``, and changes nothing
(the whole database is compared before and after)."""

from __future__ import annotations

import copy
import json
import re

import pytest
from conftest import order_body, place, product, receive, stock_of
from sqlalchemy import select

from engine.db import db

MUG_BARCODE = "4006381333948"
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


# ----------------------------------------------------------------- helpers


def snapshot(app) -> dict:
    """Every row of every table (the plugins' tables included), in primary key order."""
    with app.app_context():
        state = {}
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
            state[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
    return state


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The response is ``status`` with exactly the error body's three keys; returns ``errors``."""
    body = resp.get_json()
    assert resp.status_code == status, (resp.status_code, body)
    assert isinstance(body, dict) and set(body) == {"code", "message", "errors"}, body
    assert isinstance(body["code"], str) and SNAKE.match(body["code"]), body
    assert isinstance(body["message"], str) and body["message"].strip(), body
    assert isinstance(body["errors"], dict), body
    if code is not None:
        assert body["code"] == code, body
    return body["errors"]


def flat(errors, prefix=()) -> dict:
    """{("customer", "email"): ["..."], ...}: every message list by its field path."""
    if isinstance(errors, dict):
        out = {}
        for key, value in errors.items():
            out.update(flat(value, (*prefix, key)))
        return out
    assert isinstance(errors, list) and errors and all(isinstance(m, str) and m for m in errors), (prefix, errors)
    return {prefix: errors}


def assert_unchanged(app, before: dict, what: str = "") -> None:
    after = snapshot(app)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"{what}: tables changed: {changed}"


@pytest.fixture
def shop(api, app):
    """A mug (with a barcode) and a serial-tracked phone in stock."""
    product(api, "MUG", price=1290, barcode=MUG_BARCODE)
    product(api, "PHONE", price=59900, track_serials=True)
    product(api, "CASE", price=990, track_serials=True)
    receive(api, "MUG", 5)
    receive(api, "PHONE", 3, serials=["P-1", "P-2", "P-3"])
    receive(api, "CASE", 1, serials=["C-1"])
    return api


def _without(body, *path):
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(body, value, *path):
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


GOOD = order_body([("MUG", 1)])

# (case, body, expected field paths of the errors)
ORDER_CASES = [
    ("missing e-mail", _without(GOOD, "customer", "email"), {("customer", "email")}),
    ("malformed e-mail", _with(GOOD, "ann-at-example.com", "customer", "email"), {("customer", "email")}),
    ("empty e-mail", _with(GOOD, "", "customer", "email"), {("customer", "email")}),
    ("e-mail not a string", _with(GOOD, 42, "customer", "email"), {("customer", "email")}),
    ("missing name", _without(GOOD, "customer", "name"), {("customer", "name")}),
    ("missing customer", _without(GOOD, "customer"), {("customer",)}),
    ("missing shipping address", _without(GOOD, "customer", "shipping_address"),
     {("customer", "shipping_address")}),
    # city and postcode depend on the country (checked at placement): with no country, only these two
    ("empty shipping address", _with(GOOD, {}, "customer", "shipping_address"),
     {("customer", "shipping_address", f) for f in ("line1", "country")}),
    ("German postcode of four digits", _with(GOOD, "1011", "customer", "shipping_address", "postal_code"),
     {("customer", "shipping_address", "postal_code")}),
    ("unknown country", _with(GOOD, "ZZ", "customer", "shipping_address", "country"),
     {("customer", "shipping_address", "country")}),
    ("missing line1", _without(GOOD, "customer", "shipping_address", "line1"),
     {("customer", "shipping_address", "line1")}),
    ("missing city", _without(GOOD, "customer", "shipping_address", "city"),
     {("customer", "shipping_address", "city")}),
    ("missing postal code", _without(GOOD, "customer", "shipping_address", "postal_code"),
     {("customer", "shipping_address", "postal_code")}),
    ("missing country", _without(GOOD, "customer", "shipping_address", "country"),
     {("customer", "shipping_address", "country")}),
    ("country spelled out", _with(GOOD, "Germany", "customer", "shipping_address", "country"),
     {("customer", "shipping_address", "country")}),
    ("country in lower case", _with(GOOD, "de", "customer", "shipping_address", "country"),
     {("customer", "shipping_address", "country")}),
    ("zero quantity", order_body([("MUG", 0)]), {("lines", "0", "quantity")}),
    ("negative quantity", order_body([("MUG", -2)]), {("lines", "0", "quantity")}),
    ("float quantity", order_body([("MUG", 1.0)]), {("lines", "0", "quantity")}),
    ("fractional quantity", order_body([("MUG", 1.5)]), {("lines", "0", "quantity")}),
    ("string quantity", order_body([("MUG", "1")]), {("lines", "0", "quantity")}),
    ("boolean quantity", order_body([("MUG", True)]), {("lines", "0", "quantity")}),
    ("null quantity", order_body([("MUG", None)]), {("lines", "0", "quantity")}),
    ("second line bad", order_body([("MUG", 1), ("PHONE", 0.5)]), {("lines", "1", "quantity")}),
    ("line without sku", _without(GOOD, "lines", 0, "sku"), {("lines", "0", "sku")}),
    ("no lines", _without(GOOD, "lines"), {("lines",)}),
    ("empty lines list", _with(GOOD, [], "lines"), {("lines",)}),
    ("lines not a list", _with(GOOD, {"sku": "MUG", "quantity": 1}, "lines"), {("lines",)}),
    ("unknown top-level field", _with(GOOD, 1, "discount"), {("discount",)}),
    ("unknown customer field", _with(GOOD, True, "customer", "is_admin"), {("customer", "is_admin")}),
    ("unknown address field", _with(GOOD, "x", "customer", "shipping_address", "planet"),
     {("customer", "shipping_address", "planet")}),
    ("unknown line field", _with(GOOD, 1, "lines", 0, "unit_price"), {("lines", "0", "unit_price")}),
    ("gift not a boolean", _with(GOOD, "yes", "gift"), {("gift",)}),
]


# ----------------------------------------------------------------- placing orders


def test_invalid_order_bodies_are_422_field_by_field_and_change_nothing(shop, app):
    before = snapshot(app)
    for case, body, paths in ORDER_CASES:
        errors = assert_error(shop.post("/orders", body), 422, "validation_error")
        assert set(flat(errors)) == paths, (case, errors)
    assert_unchanged(app, before, "invalid order bodies")
    assert stock_of(shop, "MUG")["reserved"] == 0
    assert shop.get("/orders").get_json()["items"] == []


def test_unknown_fields_say_unknown_field(shop):
    body = _with(_with(_with(GOOD, 1, "extra"), 2, "customer", "shipping_address", "extra"), 3, "lines", 0, "extra")
    errors = assert_error(shop.post("/orders", body), 422, "validation_error")
    assert flat(errors) == {("extra",): ["Unknown field."],
                            ("customer", "shipping_address", "extra"): ["Unknown field."],
                            ("lines", "0", "extra"): ["Unknown field."]}


def test_unknown_sku_is_422_naming_the_lines_sku_field(shop, app):
    before = snapshot(app)
    errors = assert_error(shop.post("/orders", order_body([("MUG", 1), ("PHONE", 1), ("NOPE", 2)])), 422,
                          "validation_error")
    assert set(flat(errors)) == {("lines", "2", "sku")}
    assert "NOPE" in errors["lines"]["2"]["sku"][0]
    assert_unchanged(app, before, "unknown sku")


def test_broken_json_is_400_invalid_json(shop, app):
    before = snapshot(app)
    for raw in ('{"customer": ', "{'single': 'quotes'}", "not json at all", '{"a": 1,}'):
        resp = shop.post("/orders", data=raw, headers={"Content-Type": "application/json"})
        assert_error(resp, 400, "invalid_json")
    resp = shop.post("/products", data="{", headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "invalid_json")
    assert_unchanged(app, before, "broken JSON")


@pytest.mark.parametrize("path", ["/orders", "/products", "/stock/receipts"])
def test_a_body_that_is_not_an_object_is_422(shop, app, path):
    before = snapshot(app)
    for body in ([GOOD], "a string", 42, None):
        resp = shop.post(path, data=json.dumps(body), headers={"Content-Type": "application/json"})
        errors = assert_error(resp, 422, "validation_error")
        assert errors, (path, body)
    assert_unchanged(app, before, f"non-object bodies on {path}")


def test_insufficient_stock_is_409_naming_the_sku_and_reserves_nothing(shop, app):
    place(shop, [("MUG", 2)])
    before = snapshot(app)
    # the first line alone could be reserved: nothing of it may be kept
    resp = shop.post("/orders", order_body([("PHONE", 1), ("MUG", 4)]))
    errors = assert_error(resp, 409, "insufficient_stock")
    assert "MUG" in resp.get_json()["message"]
    assert set(flat(errors)) == {("lines", "1", "sku")}
    assert "MUG" in errors["lines"]["1"]["sku"][0]
    assert_unchanged(app, before, "insufficient stock")
    assert stock_of(shop, "MUG")["reserved"] == 2
    assert stock_of(shop, "PHONE")["reserved"] == 0
    assert len(shop.get("/orders").get_json()["items"]) == 1


def test_unknown_coupon_and_payment_provider_are_422(shop, app):
    before = snapshot(app)
    errors = assert_error(shop.post("/orders", order_body([("MUG", 1)], coupon="FREESTUFF")), 422)
    assert set(flat(errors)) == {("coupon",)}
    errors = assert_error(shop.post("/orders", order_body([("MUG", 1)], payment_provider="bitcoin-wallet")), 422)
    assert set(flat(errors)) == {("payment_provider",)}
    assert "bitcoin-wallet" in errors["payment_provider"][0]
    assert_unchanged(app, before, "coupon / provider")


def test_bad_order_list_queries_are_422(shop):
    for query, field in (("status=lost", "status"), ("limit=0", "limit"), ("limit=501", "limit"),
                         ("limit=ten", "limit"), ("cursor=abc", "cursor"), ("customer=x", "customer")):
        errors = assert_error(shop.get(f"/orders?{query}"), 422, "validation_error")
        assert set(flat(errors)) == {(field,)}, (query, errors)


# ----------------------------------------------------------------- products and stock


def test_product_errors(shop, app):
    before = snapshot(app)
    base = {"sku": "NEW", "name": "New", "price": 100, "currency": "EUR"}
    errors = assert_error(shop.post("/products", {**base, "sku": "MUG"}), 409, "duplicate_sku")
    assert set(errors) == {"sku"}
    errors = assert_error(shop.post("/products", {**base, "barcode": MUG_BARCODE}), 409, "duplicate_barcode")
    assert set(errors) == {"barcode"}
    for case, body, paths in [
        ("bad currency", {**base, "currency": "EURO"}, {("currency",)}),
        ("numeric currency", {**base, "currency": "978"}, {("currency",)}),
        ("float price", {**base, "price": 12.5}, {("price",)}),
        ("integral float price", {**base, "price": 100.0}, {("price",)}),
        ("string price", {**base, "price": "100"}, {("price",)}),
        ("negative price", {**base, "price": -1}, {("price",)}),
        ("missing sku", {k: v for k, v in base.items() if k != "sku"}, {("sku",)}),
        ("missing name", {k: v for k, v in base.items() if k != "name"}, {("name",)}),
        ("missing price", {k: v for k, v in base.items() if k != "price"}, {("price",)}),
        ("bad sku characters", {**base, "sku": "a sku with spaces"}, {("sku",)}),
        ("track_serials as a string", {**base, "track_serials": "true"}, {("track_serials",)}),
        ("float reorder point", {**base, "reorder_point": 2.0}, {("reorder_point",)}),
        ("unknown field", {**base, "colour": "red"}, {("colour",)}),
    ]:
        errors = assert_error(shop.post("/products", body), 422, "validation_error")
        assert set(flat(errors)) == paths, (case, errors)
    assert_unchanged(app, before, "product errors")


def test_stock_receipt_errors(shop, app):
    before = snapshot(app)
    errors = assert_error(shop.post("/stock/receipts", {"sku": "NOPE", "quantity": 1}), 422)
    assert set(flat(errors)) == {("sku",)} and "NOPE" in errors["sku"][0]
    # serial-tracked: exactly one serial per unit
    for serials in ([], ["P-7"], ["P-7", "P-8", "P-9"], ["P-7", "P-7"]):
        errors = assert_error(shop.post("/stock/receipts", {"sku": "PHONE", "quantity": 2, "serials": serials}),
                              422)
        assert set(flat(errors)) == {("serials",)}, (serials, errors)
    errors = assert_error(shop.post("/stock/receipts", {"sku": "PHONE", "quantity": 1}), 422)
    assert set(flat(errors)) == {("serials",)}
    # a known serial is a 409 naming it
    resp = shop.post("/stock/receipts", {"sku": "PHONE", "quantity": 2, "serials": ["P-9", "P-2"]})
    errors = assert_error(resp, 409)
    assert set(flat(errors)) == {("serials",)} and "P-2" in errors["serials"][0]
    # serials for an untracked product
    errors = assert_error(shop.post("/stock/receipts", {"sku": "MUG", "quantity": 1, "serials": ["M-1"]}), 422)
    assert set(flat(errors)) == {("serials",)}
    for body, paths in [
        ({"sku": "MUG", "quantity": 0}, {("quantity",)}),
        ({"sku": "MUG", "quantity": -3}, {("quantity",)}),
        ({"sku": "MUG", "quantity": 2.0}, {("quantity",)}),
        ({"sku": "MUG", "quantity": "2"}, {("quantity",)}),
        ({"sku": "MUG"}, {("quantity",)}),
        ({"quantity": 1}, {("sku",)}),
        ({"sku": "MUG", "quantity": 1, "bin": "A-1"}, {("bin",)}),
        ({"sku": "MUG", "quantity": 1, "unit_cost": 1.5}, {("unit_cost",)}),
    ]:
        errors = assert_error(shop.post("/stock/receipts", body), 422, "validation_error")
        assert set(flat(errors)) == paths, (body, errors)
    assert_unchanged(app, before, "stock receipt errors")
    assert stock_of(shop, "PHONE")["on_hand"] == 3


# ----------------------------------------------------------------- 404 and 405


def test_missing_resources_are_404(shop, app):
    order = place(shop, [("MUG", 1)])
    before = snapshot(app)
    for path in ("/products/NOPE", "/stock/NOPE", "/orders/999999", "/customers/999999", "/returns/999999",
                 "/shipments/999999/label.pdf", "/orders/999999/rates"):
        assert_error(shop.get(path), 404, "not_found")
    for path, body in (("/orders/999999/pay", {}), ("/orders/999999/pick", {"scans": ["MUG"]}),
                       ("/orders/999999/confirm", {}), ("/orders/999999/cancel", {}),
                       ("/orders/999999/deliver", {}), ("/returns/999999/receive", {}),
                       ("/orders/999999/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "broken",
                                                   "resolution": "refund"})):
        assert_error(shop.post(path, body), 404, "not_found")
    assert_error(shop.get("/no/such/path"), 404, "not_found")
    assert_unchanged(app, before, "404s")
    assert shop.get(f"/orders/{order['id']}").status_code == 200


def test_wrong_method_is_405_with_an_allow_header(shop, app):
    before = snapshot(app)
    headers = shop._headers(None)
    cases = [
        (shop.client.delete, "/api/v1/orders", {"GET", "POST"}),
        (shop.client.put, "/api/v1/products/MUG", {"GET"}),
        (shop.client.patch, "/api/v1/stock/MUG", {"GET"}),
        (shop.client.get, "/api/v1/stock/receipts", {"POST"}),  # not GET /stock/<sku> with the sku 'receipts'
        (shop.client.get, "/api/v1/orders/1/pay", {"POST"}),
        (shop.client.delete, "/api/v1/products", {"POST"}),
    ]
    for call, path, must_allow in cases:
        resp = call(path, headers=headers)
        assert_error(resp, 405, "method_not_allowed")
        allow = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
        assert must_allow <= allow, (path, allow)
        assert call.__name__.upper() not in allow
    assert_unchanged(app, before, "405s")


# ----------------------------------------------------------------- warehouse scans


@pytest.fixture
def paid_order(shop):
    order = place(shop, [("MUG", 2), ("PHONE", 1)])
    resp = shop.post(f"/orders/{order['id']}/pay")
    assert resp.status_code == 200 and resp.get_json()["status"] == "paid"
    return order["id"]


def test_pick_scans_that_do_not_belong_are_rejected_and_nothing_is_recorded(shop, app, paid_order):
    oid = paid_order
    before = snapshot(app)
    resp = shop.post(f"/orders/{oid}/pick", {"scans": ["MUG", "NOPE", "P-1", "C-1", "X-404"]})
    errors = assert_error(resp, 422, "validation_error")
    # per-scan messages keyed by the scan's position; the good scans (0, 2) are not recorded either
    assert set(flat(errors)) == {("scans", "1"), ("scans", "3"), ("scans", "4")}
    assert errors["scans"]["1"][0].startswith("NOPE")
    assert errors["scans"]["3"][0].startswith("C-1")
    assert_unchanged(app, before, "pick with foreign scans")
    body = shop.get(f"/orders/{oid}").get_json()
    assert body["status"] == "paid"
    assert [line["picked_quantity"] for line in body["lines"]] == [0, 0]


def test_pick_bad_bodies(shop, app, paid_order):
    before = snapshot(app)
    for body, paths in (({}, {("scans",)}), ({"scans": []}, {("scans",)}), ({"scans": "MUG"}, {("scans",)}),
                        ({"scans": [""]}, {("scans", "0")}), ({"scans": [7]}, {("scans", "0")}),
                        ({"scans": ["MUG"], "who": "me"}, {("who",)})):
        errors = assert_error(shop.post(f"/orders/{paid_order}/pick", body), 422, "validation_error")
        assert set(flat(errors)) == paths, (body, errors)
    assert_unchanged(app, before, "bad pick bodies")


def test_over_scanning_is_rejected(shop, app, paid_order):
    oid = paid_order
    before = snapshot(app)
    # three mugs on a two-mug order (by sku and barcode alike)
    errors = assert_error(shop.post(f"/orders/{oid}/pick", {"scans": ["MUG", MUG_BARCODE, "MUG"]}), 422)
    assert set(flat(errors)) == {("scans", "2")}
    # two phones on a one-phone order; the same serial twice
    errors = assert_error(shop.post(f"/orders/{oid}/pick", {"scans": ["P-1", "P-2"]}), 422)
    assert set(flat(errors)) == {("scans", "1")}
    errors = assert_error(shop.post(f"/orders/{oid}/pick", {"scans": ["P-1", "P-1"]}), 422)
    assert set(flat(errors)) == {("scans", "1")}
    assert_unchanged(app, before, "over-scanning in one call")
    # over-scanning across calls: the second call's extra mug is rejected, the first call stays
    assert shop.post(f"/orders/{oid}/pick", {"scans": ["MUG", "MUG"]}).get_json()["status"] == "picking"
    middle = snapshot(app)
    errors = assert_error(shop.post(f"/orders/{oid}/pick", {"scans": ["P-3", MUG_BARCODE]}), 422)
    assert set(flat(errors)) == {("scans", "1")}
    assert_unchanged(app, middle, "over-scanning across calls")
    resp = shop.post(f"/orders/{oid}/pick", {"scans": ["P-3"]})
    assert resp.status_code == 200 and resp.get_json()["status"] == "picked"
    assert resp.get_json()["lines"][1]["serials"] == ["P-3"]


def test_pack_scans_must_match_the_picked_units_exactly(shop, app, paid_order):
    oid = paid_order
    assert shop.post(f"/orders/{oid}/pick", {"scans": ["MUG", MUG_BARCODE, "P-2"]}).get_json()["status"] == "picked"
    assert shop.post(f"/orders/{oid}/confirm").get_json()["status"] == "confirmed"
    before = snapshot(app)
    cases = [
        ("missing unit", ["MUG", "P-2"], {("missing",)}),
        ("missing serial", ["MUG", "MUG"], {("missing",)}),
        ("extra unit", ["MUG", "MUG", MUG_BARCODE, "P-2"], {("scans", "2")}),
        ("wrong serial", ["MUG", "MUG", "P-1"], {("scans", "2"), ("missing",)}),
        ("serial of another product", ["MUG", "MUG", "P-2", "C-1"], {("scans", "3")}),
        ("serial twice", ["MUG", "MUG", "P-2", "P-2"], {("scans", "3")}),
        ("foreign sku", ["MUG", "MUG", "P-2", "CASE"], {("scans", "3")}),
    ]
    for case, scans, paths in cases:
        errors = assert_error(shop.post(f"/orders/{oid}/pack", {"scans": scans}), 422, "validation_error")
        assert set(flat(errors)) == paths, (case, errors)
    errors = assert_error(shop.post(f"/orders/{oid}/pack", {"scans": ["MUG", "MUG", "P-1"]}), 422)
    assert errors["missing"] == ["P-2"]
    assert_unchanged(app, before, "pack mismatches")
    assert shop.get(f"/orders/{oid}").get_json()["status"] == "confirmed"
    resp = shop.post(f"/orders/{oid}/pack", {"scans": ["P-2", MUG_BARCODE, "MUG"]})
    assert resp.status_code == 200 and resp.get_json()["status"] == "packed"


# ----------------------------------------------------------------- other transitions' bodies


def test_transition_bodies_are_validated(shop, app, paid_order):
    oid = paid_order
    before = snapshot(app)
    for path, body, paths in (
        ("pay", {"amount": 1.5}, {("amount",)}),
        ("pay", {"amount": "100"}, {("amount",)}),
        ("cancel", {"reason": 5}, {("reason",)}),
        ("cancel", {"why": "x"}, {("why",)}),
        ("hold", {}, {("reason",)}),
        ("ship", {"carrier": "generic"}, {("service",)}),
        ("refunds", {"amount": 10.0}, {("amount",)}),
        ("refunds", {"amount": 0}, {("amount",)}),
    ):
        errors = assert_error(shop.post(f"/orders/{oid}/{path}", body), 422, "validation_error")
        assert set(flat(errors)) == paths, (path, body, errors)
    # more than was paid: a conflict with the order's state, saying so
    errors = assert_error(shop.post(f"/orders/{oid}/refunds", {"amount": 70000}), 409, "refund_exceeds_refundable")
    assert set(flat(errors)) == {("amount",)}
    assert_unchanged(app, before, "transition bodies")


def test_amounts_are_limited_by_what_is_due_not_by_a_fixed_cap(api, app):
    """Part payments and refunds above 1,000,000 minor units (EUR 10,000) are valid amounts."""
    product(api, "CAR", price=2_500_000)
    receive(api, "CAR", 1)
    oid = place(api, [("CAR", 1)])["id"]
    before = snapshot(app)
    resp = api.post(f"/orders/{oid}/pay", {"amount": 2_500_001})
    errors = assert_error(resp, 409, "overpayment")
    assert "2500000" in resp.get_json()["message"]  # says what is due
    assert set(flat(errors)) == {("amount",)}
    assert_unchanged(app, before, "overpayment")
    body = api.post(f"/orders/{oid}/pay", {"amount": 1_500_000}).get_json()
    assert (body["status"], body["payment_status"], body["totals"]["paid"]) == ("placed", "partially_paid", 1_500_000)
    body = api.post(f"/orders/{oid}/pay", {"amount": 1_000_000}).get_json()
    assert (body["status"], body["payment_status"]) == ("paid", "paid")
    resp = api.post(f"/orders/{oid}/refunds", {"amount": 2_000_000, "reason": "goodwill"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["totals"]["refunded"] == 2_000_000
    before = snapshot(app)
    errors = assert_error(api.post(f"/orders/{oid}/refunds", {"amount": 500_001}), 409, "refund_exceeds_refundable")
    assert set(flat(errors)) == {("amount",)}
    assert_unchanged(app, before, "refund beyond what was paid")
