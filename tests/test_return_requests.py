"""The customer's return request: the public page (``/returns/request``, the follow-up e-mail's link) and its
JSON twin for headless storefronts (``POST /api/v1/returns/requests``). No API key; the order number and
the order's e-mail are checked together and a wrong pair never says which part was wrong; the form is
CSRF-protected. Both databases."""

from __future__ import annotations

import re

import pytest
from conftest import place, product, receive
from sqlalchemy import select
from test_returns_rma import Hooks, shipped
from test_transitions import snapshot

from engine.db import db
from engine.models import Return

NOT_FOUND = "we could not find an order with that number and e-mail"


@pytest.fixture
def hooks():
    return Hooks()


@pytest.fixture
def app_config(hooks):
    return {"EXTRA_PLUGINS": [("flaky", hooks)]}


@pytest.fixture
def order(api):
    product(api, "MUG", price=1290)
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "MUG", 10)
    receive(api, "PHONE", 3, serials=["P-1", "P-2", "P-3"])
    return shipped(api, [("MUG", 2, None), ("PHONE", 2, ["P-1", "P-2"])])


def token_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def open_form(client, number):
    resp = client.get(f"/returns/request?order={number}")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    return token_of(resp.get_data(as_text=True))


def returns_of(app):
    with app.app_context():
        rows = [(r.status, r.source, r.resolution, r.lines) for r in
                db.session.execute(select(Return).order_by(Return.id)).scalars()]
        db.session.rollback()
    return rows


def test_a_wrong_pair_is_refused_without_saying_which_part_was_wrong(app, order):
    client = app.test_client()  # no API key anywhere in this test
    token = open_form(client, order["number"])
    answers = []
    for number, email in ((order["number"], "bob@example.com"), ("999999", "ann@example.com"),
                          ("abc", "ann@example.com"), (order["number"], "")):
        resp = client.post("/returns/request", data={"csrf_token": token, "step": "find", "order": number,
                                                     "email": email})
        text = resp.get_data(as_text=True)
        answers.append((resp.status_code, NOT_FOUND.capitalize() in text, "e-mail is wrong" in text))
    assert answers == [(404, True, False)] * 4
    # the JSON twin answers the same for both wrong parts
    for number, email in ((order["number"], "bob@example.com"), ("999999", "ann@example.com")):
        resp = client.post("/api/v1/returns/requests", json={"order_number": number, "email": email, "lines": [
            {"sku": "MUG", "quantity": 1}], "reason": "broken", "resolution": "refund"})
        assert (resp.status_code, resp.get_json()) == (404, {"code": "order_not_found", "message": NOT_FOUND,
                                                             "errors": {}})
    assert returns_of(app) == []


def test_the_right_pair_shows_the_shipped_lines_and_opens_a_requested_return(app, order, hooks, api):
    client = app.test_client()
    token = open_form(client, order["number"])
    resp = client.post("/returns/request", data={"csrf_token": token, "step": "find", "order": order["number"],
                                                 "email": " Ann@Example.com "})
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "Mug" in page and "P-1" in page and "P-2" in page and "P-3" not in page
    lines = {line["sku"]: line for line in api.get(f"/orders/{order['id']}").get_json()["lines"]}
    form = {"csrf_token": token_of(page), "step": "submit", "order": order["number"], "email": "ann@example.com",
            f"qty_{lines['MUG']['id']}": "1", f"serial_{lines['PHONE']['id']}": ["P-2"],
            "reason": "the handle broke", "resolution": "exchange"}
    resp = client.post("/returns/request", data=form)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert "we received your request" in resp.get_data(as_text=True).lower()
    assert returns_of(app) == [("requested", "customer", "exchange", [
        {"sku": "MUG", "quantity": 1, "serials": []}, {"sku": "PHONE", "quantity": 1, "serials": ["P-2"]}])]
    # a customer's request waits for staff: requested, nothing approved, serials still shipped
    assert [hook for hook, _ in hooks.calls] == ["return_requested"]
    with app.app_context():
        rid = db.session.execute(select(Return.id)).scalar_one()
        db.session.rollback()
    resp = api.post(f"/returns/{rid}/receive", {})
    assert (resp.status_code, resp.get_json()["errors"]["allowed_actions"]) == (409, ["approve", "reject"])
    assert api.post(f"/returns/{rid}/approve").status_code == 200
    assert api.post(f"/returns/{rid}/receive", {}).get_json()["status"] == "resolved"


def test_the_form_needs_its_csrf_token(app, order, api):
    client = app.test_client()
    lines = {line["sku"]: line for line in api.get(f"/orders/{order['id']}").get_json()["lines"]}
    form = {"step": "submit", "order": order["number"], "email": "ann@example.com",
            f"qty_{lines['MUG']['id']}": "1", "reason": "broken", "resolution": "refund"}
    before = snapshot(app)
    assert client.post("/returns/request", data=form).status_code == 400  # no token
    token = open_form(client, order["number"])
    assert client.post("/returns/request", data={**form, "csrf_token": token + "x"}).status_code == 400  # forged
    other = app.test_client()  # a token of another visitor's session (what a forging site could fetch itself)
    assert other.post("/returns/request", data={**form, "csrf_token": token}).status_code == 400
    assert snapshot(app) == before
    assert client.post("/returns/request", data={**form, "csrf_token": token}).status_code == 201


def test_bounded_input_and_bad_choices_are_refused_on_the_page(app, order, api):
    client = app.test_client()
    token = open_form(client, order["number"])
    lines = {line["sku"]: line for line in api.get(f"/orders/{order['id']}").get_json()["lines"]}
    base = {"csrf_token": token, "step": "submit", "order": order["number"], "email": "ann@example.com",
            "reason": "broken", "resolution": "refund"}
    for extra in ({"reason": "x" * 1001}, {f"qty_{lines['MUG']['id']}": "3"}, {f"qty_{lines['MUG']['id']}": "1e9"},
                  {f"qty_{lines['MUG']['id']}": "1", "resolution": "keep"}, {}):
        resp = client.post("/returns/request", data={**base, **extra})
        assert resp.status_code == 422, (extra, resp.status_code)
    assert returns_of(app) == []


def test_the_json_request_needs_no_api_key_and_checks_like_the_page(app, order, api):
    client = app.test_client()
    body = {"order_number": order["number"], "email": "ann@example.com", "reason": "broken", "resolution": "refund",
            "lines": [{"sku": "PHONE", "quantity": 1, "serials": ["P-3"]}]}
    resp = client.post("/api/v1/returns/requests", json=body)
    assert resp.status_code == 422 and "P-3" in str(resp.get_json()["errors"])  # not shipped on this order
    resp = client.post("/api/v1/returns/requests", json={**body, "lines": [{"sku": "PHONE", "quantity": 1,
                                                                           "serials": ["P-1"]}]})
    assert resp.status_code == 201, resp.get_json()
    assert {k: resp.get_json()[k] for k in ("order_number", "status", "resolution")} == {
        "order_number": order["number"], "status": "requested", "resolution": "refund"}
    assert "refund_amount" not in resp.get_json()
    resp = client.post("/api/v1/returns/requests", json={**body, "lines": [{"sku": "PHONE", "quantity": 1,
                                                                           "serials": ["P-1"]}]})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "serial_already_returned")
    assert client.post("/api/v1/returns/requests", json={**body, "surprise": 1}).status_code == 422
    # an order not shipped yet cannot be returned (the pair matched, so this may be said)
    open_order = place(api, [("MUG", 1)])
    resp = client.post("/api/v1/returns/requests", json={**body, "order_number": open_order["number"],
                                                          "lines": [{"sku": "MUG", "quantity": 1}]})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "not_returnable")
    # documented as public: no security, no 401
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/returns/requests"]["post"]
    assert operation.get("security") == [] and "401" not in operation["responses"]
