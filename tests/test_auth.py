"""API keys (401 / 403, scopes, hashing, revocation) and Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from conftest import ApiClient, new_key, order_body, place, product, receive, stock_of
from sqlalchemy import select

from engine.db import db
from engine.models import ApiKey
from engine.services import auth


def snapshot(app) -> dict:
    with app.app_context():
        state = {t.name: [tuple(r) for r in db.session.execute(select(t).order_by(*t.primary_key.columns)).all()]
                 for t in db.metadata.sorted_tables}
        db.session.rollback()
    return state


def assert_error(resp, status, code):
    body = resp.get_json()
    assert resp.status_code == status, (resp.status_code, body)
    assert set(body) == {"code", "message", "errors"} and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)


def key_id(app, key: str) -> int:
    with app.app_context():
        return auth.find_api_key(key).id


# ----------------------------------------------------------------- authentication


def test_no_key_or_a_wrong_key_is_401_and_changes_nothing(api, app):
    product(api, "MUG")
    client = app.test_client()
    before = snapshot(app)
    body = {"sku": "NEW", "name": "New", "price": 100, "currency": "EUR"}
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "},
                    {"Authorization": f"Basic {api.key}"}, {"Authorization": api.key},
                    {"Authorization": "Bearer hs_not-a-key"}, {"Authorization": f"Bearer {api.key}x"},
                    {"Authorization": f"Bearer {api.key[:-1]}"}):
        assert_error(client.get("/api/v1/products/MUG", headers=headers), 401, "unauthorized")
        assert_error(client.get("/api/v1/orders", headers=headers), 401, "unauthorized")
        assert_error(client.post("/api/v1/products", json=body, headers=headers), 401, "unauthorized")
        assert_error(client.post("/api/v1/orders", json=order_body([("MUG", 1)]), headers=headers), 401,
                     "unauthorized")
    # authentication comes first: even a 404 path or a broken body answers 401 without a key
    assert_error(client.get("/api/v1/orders/12345"), 401, "unauthorized")
    assert_error(client.post("/api/v1/orders", data="{", headers={"Content-Type": "application/json"}), 401,
                 "unauthorized")
    assert snapshot(app) == before


def test_a_revoked_key_is_401_at_once(api, app):
    product(api, "MUG")
    key = new_key(app, ("read", "write"), name="till")
    till = ApiClient(app.test_client(), key)
    assert till.get("/products/MUG").status_code == 200
    with app.app_context():
        auth.revoke_api_key(key_id(app, key))
    assert_error(till.get("/products/MUG"), 401, "unauthorized")
    assert_error(till.post("/products", {"sku": "X", "name": "X", "price": 1, "currency": "EUR"}), 401,
                 "unauthorized")
    assert api.get("/products/MUG").status_code == 200  # other keys keep working
    assert api.get("/products/X").status_code == 404


def test_read_only_key_reads_but_cannot_write(api, app):
    product(api, "MUG")
    receive(api, "MUG", 3)
    order = place(api, [("MUG", 1)])
    reader = ApiClient(app.test_client(), new_key(app, ("read",)))
    for path in ("/products/MUG", "/stock/MUG", "/orders", f"/orders/{order['id']}",
                 f"/customers/{order['customer']['id']}", "/plugins", f"/orders/{order['id']}/rates"):
        assert reader.get(path).status_code == 200, path
    before = snapshot(app)
    for path, body in (("/products", {"sku": "NEW", "name": "New", "price": 100, "currency": "EUR"}),
                       ("/stock/receipts", {"sku": "MUG", "quantity": 1}),
                       ("/orders", order_body([("MUG", 1)])),
                       (f"/orders/{order['id']}/pay", {}),
                       (f"/orders/{order['id']}/cancel", {})):
        assert_error(reader.post(path, body), 403, "forbidden")
    assert_error(reader.get("/admin/api-keys"), 403, "forbidden")
    assert snapshot(app) == before
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "placed"


def test_write_key_cannot_use_admin_endpoints(api, app):
    product(api, "MUG")
    receive(api, "MUG", 3)
    writer = ApiClient(app.test_client(), new_key(app, ("read", "write")))
    assert writer.get("/products/MUG").status_code == 200
    assert writer.post("/orders", order_body([("MUG", 1)])).status_code == 201
    before = snapshot(app)
    assert_error(writer.get("/admin/api-keys"), 403, "forbidden")
    assert_error(writer.post("/admin/api-keys", {"name": "mine", "scopes": ["admin"]}), 403, "forbidden")
    assert_error(writer.post(f"/admin/api-keys/{key_id(app, api.key)}/revoke"), 403, "forbidden")
    assert snapshot(app) == before
    # a write-only key places orders too, and write implies read
    write_only = ApiClient(app.test_client(), new_key(app, ("write",)))
    assert write_only.post("/orders", order_body([("MUG", 1)])).status_code == 201
    assert write_only.get("/products/MUG").status_code == 200
    assert_error(write_only.get("/admin/api-keys"), 403, "forbidden")
    # the admin key reaches everything
    assert api.get("/admin/api-keys").status_code == 200


def test_openapi_and_docs_need_no_key(app):
    client = app.test_client()
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200 and resp.get_json()["openapi"].startswith("3.")
    resp = client.get("/api/docs")
    assert resp.status_code == 200 and b"swagger" in resp.data.lower()
    assert client.get("/api/redoc").status_code == 200


def test_the_docs_pages_load_every_asset_from_hookshop_itself(app):
    """Offline (no CDN): every script and stylesheet the two pages name is served by hookshop, no key needed."""
    client = app.test_client()
    for page, wanted in (("/api/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
                         ("/api/redoc", {"redoc.standalone.js"})):
        html = client.get(page).get_data(as_text=True)
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert wanted <= {a.rsplit("/", 1)[-1] for a in assets}, assets
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from another host"
            resp = client.get(asset)
            assert resp.status_code == 200 and len(resp.data) > 10_000, asset
            assert resp.mimetype in ("text/javascript", "application/javascript", "text/css"), resp.mimetype
    assert client.get("/api/docs-assets/swagger-ui/../../../etc/passwd").status_code == 404


def test_keys_are_stored_only_as_sha256_hashes(app):
    key = new_key(app, ("read",), name="kiosk")
    with app.app_context():
        row = db.session.execute(select(ApiKey).where(ApiKey.name == "kiosk")).scalar_one()
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.scopes == "read"
        db.session.rollback()
    dump = json.dumps(snapshot(app), default=str)
    assert key not in dump  # the clear key is nowhere in the database
    assert hashlib.sha256(key.encode()).hexdigest() in dump


# ----------------------------------------------------------------- Idempotency-Key


@pytest.fixture
def shop(api):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    return api


def _orders(api):
    return api.get("/orders").get_json()["items"]


def test_same_key_same_body_replays_the_first_response(shop, app):
    api = shop
    body = order_body([("MUG", 2)])
    first = api.post("/orders", body, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 201
    assert stock_of(api, "MUG")["reserved"] == 2
    before = snapshot(app)
    # the same JSON with another key order and spacing is the same request
    raw = json.dumps(json.loads(json.dumps(body)), indent=2, sort_keys=True)
    for again in (api.post("/orders", body, headers={"Idempotency-Key": "order-1"}),
                  api.post("/orders", data=raw, headers={"Idempotency-Key": "order-1",
                                                         "Content-Type": "application/json"})):
        assert again.status_code == 201
        assert again.get_json() == first.get_json()
    assert snapshot(app) == before  # nothing more reserved, no second order
    assert stock_of(api, "MUG")["reserved"] == 2
    assert len(_orders(api)) == 1
    # the replay is the first answer even after the order moved on
    api.post(f"/orders/{first.get_json()['id']}/pay")
    again = api.post("/orders", body, headers={"Idempotency-Key": "order-1"})
    assert again.status_code == 201 and again.get_json()["status"] == "placed"
    assert again.get_json() == first.get_json()


def test_same_key_other_body_is_409_idempotency_conflict(shop, app):
    api = shop
    assert api.post("/orders", order_body([("MUG", 1)]), headers={"Idempotency-Key": "k-1"}).status_code == 201
    before = snapshot(app)
    assert_error(api.post("/orders", order_body([("MUG", 2)]), headers={"Idempotency-Key": "k-1"}), 409,
                 "idempotency_conflict")
    assert_error(api.post("/orders", order_body([("MUG", 1)], email="bob@example.com"),
                          headers={"Idempotency-Key": "k-1"}), 409, "idempotency_conflict")
    # the key belongs to the first request: another endpoint cannot reuse it either
    assert_error(api.post("/products", {"sku": "CUP", "name": "Cup", "price": 1, "currency": "EUR"},
                          headers={"Idempotency-Key": "k-1"}), 409, "idempotency_conflict")
    assert snapshot(app) == before
    assert stock_of(api, "MUG")["reserved"] == 1


def test_a_failed_request_stores_nothing_and_may_be_retried(shop, app):
    api = shop
    body = order_body([("MUG", 8)])
    before = snapshot(app)
    assert_error(api.post("/orders", body, headers={"Idempotency-Key": "retry-me"}), 409, "insufficient_stock")
    bad = order_body([("MUG", 1)], coupon="NOPE")
    assert api.post("/orders", bad, headers={"Idempotency-Key": "bad-coupon"}).status_code == 422
    assert snapshot(app) == before  # no idempotency record either
    receive(api, "MUG", 3)
    resp = api.post("/orders", body, headers={"Idempotency-Key": "retry-me"})
    assert resp.status_code == 201 and resp.get_json()["lines"][0]["quantity"] == 8
    assert stock_of(api, "MUG")["reserved"] == 8
    # the key with a corrected body works too (the failed one left no claim on it)
    receive(api, "MUG", 1)
    assert api.post("/orders", order_body([("MUG", 1)]), headers={"Idempotency-Key": "bad-coupon"}) \
        .status_code == 201


def test_idempotency_keys_are_scoped_per_api_key(shop, app):
    api = shop
    other = ApiClient(app.test_client(), new_key(app, ("read", "write"), name="other"))
    body = order_body([("MUG", 1)])
    first = api.post("/orders", body, headers={"Idempotency-Key": "shared"})
    second = other.post("/orders", body, headers={"Idempotency-Key": "shared"})
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] != second.get_json()["id"]
    assert stock_of(api, "MUG")["reserved"] == 2
    # each key replays its own first answer
    assert other.post("/orders", body, headers={"Idempotency-Key": "shared"}).get_json()["id"] \
        == second.get_json()["id"]
    assert api.post("/orders", body, headers={"Idempotency-Key": "shared"}).get_json()["id"] \
        == first.get_json()["id"]
    assert len(_orders(api)) == 2


def test_without_the_header_every_post_is_new(shop):
    api = shop
    body = order_body([("MUG", 1)])
    assert api.post("/orders", body).get_json()["id"] != api.post("/orders", body).get_json()["id"]


def test_an_overlong_idempotency_key_is_400(shop, app):
    before = snapshot(app)
    assert_error(shop.post("/orders", order_body([("MUG", 1)]), headers={"Idempotency-Key": "k" * 256}), 400,
                 "bad_request")
    assert snapshot(app) == before


def test_idempotency_on_post_products(api, app):
    body = {"sku": "CUP", "name": "Cup", "price": 450, "currency": "EUR"}
    first = api.post("/products", body, headers={"Idempotency-Key": "p-1"})
    assert first.status_code == 201
    before = snapshot(app)
    again = api.post("/products", body, headers={"Idempotency-Key": "p-1"})
    assert again.status_code == 201 and again.get_json() == first.get_json()  # not a duplicate_sku 409
    assert snapshot(app) == before
    assert_error(api.post("/products", {**body, "price": 500}, headers={"Idempotency-Key": "p-1"}), 409,
                 "idempotency_conflict")
    # without the key, the same body is a duplicate
    assert_error(api.post("/products", body), 409, "duplicate_sku")
    assert snapshot(app) == before
