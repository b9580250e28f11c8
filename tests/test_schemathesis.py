"""schemathesis over the whole OpenAPI document against a live server, on SQLite and PostgreSQL.

Every operation (the plugins' included), every check, positive and negative data: no answer is a
5xx, and every answer matches what the document says (status code, content type, schema, headers).
The signed webhooks answer 400/401 to generated bodies: documented, and what they should do.

Reproducible: hypothesis is derandomized (the same cases on every run) and runs a bounded number of
examples per operation. One live server (werkzeug's, threaded) and one database per database kind
serve every operation, so what one operation creates another may find.

The document is loaded at import from an app on a throwaway SQLite file (schemathesis builds one
test per operation when the module is collected); it is the same document on every database.
(``schemathesis.pytest.from_fixture`` would load it from the live server, but schemathesis 4.32
reaches into a pytest-internal attribute that pytest 9.2 removed.)
"""

from __future__ import annotations

import base64
import secrets
import shutil
import tempfile

import pytest
import schemathesis
from conftest import live_server, make_app, order_body
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from engine.app import create_app

TRACKING_SECRET = "whsec_" + base64.b64encode(b"schemathesis-tracking-secret").decode()
# every plugin is on; Stripe's API is a closed loopback port, so no call leaves the machine
CONFIG = {"STRIPE_SECRET_KEY": "sk_test_schemathesis", "STRIPE_WEBHOOK_SECRET": "whsec_schemathesis",
          "STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_MAX_NETWORK_RETRIES": 0, "STRIPE_TIMEOUT": 2,
          "CARRIER_GENERIC_TRACKING_SECRET": TRACKING_SECRET}


def _document() -> dict:
    folder = tempfile.mkdtemp(prefix="hookshop-openapi-")
    try:
        app = create_app({**CONFIG, "DATABASE_URL": f"sqlite:///{folder}/openapi.sqlite", "INSTANCE": folder})
        return app.test_client().get("/api/openapi.json").get_json()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Two things a schema cannot say. "A sku that exists", "a coupon we know": such a body is schema-valid and
# still a documented 422 (DESIGN: an unknown sku is a 422 naming the field). And "no NUL character": the
# API refuses NUL everywhere (400 nul_character, tested in test_hostile_input.py), so valid data has none.
# Every check runs, with its defaults otherwise.
# The API key is schemathesis' own auth (not a header the test adds to every case): a case it generates
# without the key, to see a 401, is sent without it. The live servers store this key.
API_KEY = "hs_" + secrets.token_urlsafe(32)
SCHEMATHESIS_CONFIG = SchemathesisConfig.from_dict({
    "auth": {"openapi": {"ApiKey": {"bearer": API_KEY}}},
    "generation": {"allow-x00": False},
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422",
                                                                  "429"]}}})
schema = schemathesis.openapi.from_dict(_document(), config=SCHEMATHESIS_CONFIG)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory):
    """(base URL, API key with every scope) of a live server on a fresh database with a little data."""
    app = make_app(request.param, tmp_path_factory.mktemp(f"schemathesis-{request.param}"), request, **CONFIG)
    from engine.services import auth

    with app.app_context():
        _, key = auth.create_api_key("schemathesis", ["read", "write", "admin"], key=API_KEY)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    for sku, extra in (("MUG", {}), ("PHONE", {"track_serials": True})):
        resp = client.post("/api/v1/products", headers=headers, json={"sku": sku, "name": sku.title(),
                                                                      "price": 1290, "currency": "EUR", **extra})
        assert resp.status_code == 201, resp.get_json()
    assert client.post("/api/v1/stock/receipts", headers=headers, json={"sku": "MUG", "quantity": 50}).status_code == 201
    assert client.post("/api/v1/channels", headers=headers, json={"name": "shop", "format": "generic"}).status_code == 201
    for paid in (False, True):  # orders 1 and 2, so that small generated ids find one
        order = client.post("/api/v1/orders", headers=headers, json=order_body([("MUG", 1)])).get_json()
        if paid:
            assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers, json={}).status_code == 200
    with live_server(app) as base:
        yield base, key
    from engine.db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_promises(case, live):
    base, _ = live
    case.call_and_validate(base_url=base)
