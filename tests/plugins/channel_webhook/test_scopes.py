"""Secrets need the admin scope: a channel's signing secret and a webhook subscription's, created,
rotated or shown; a ``write`` key gets 403 and changes nothing. Documented in the OpenAPI's 403."""

from __future__ import annotations

import pytest
from conftest import ApiClient, new_key

GENERIC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def writer(app):
    return ApiClient(app.test_client(), new_key(app, scopes=("read", "write"), name="writer"))


@pytest.fixture
def setup(api, receiver):
    """A channel and a subscription made with the admin key."""
    assert api.post("/channels", {"name": "site", "format": "generic", "secret": GENERIC_SECRET}).status_code == 201
    resp = api.post("/webhooks/subscriptions", {"url": receiver.url, "events": ["order_paid"]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _forbidden(resp):
    body = resp.get_json()
    assert resp.status_code == 403, body
    assert body["code"] == "forbidden" and "'admin' scope" in body["message"], body


def test_a_write_key_cannot_create_or_rotate_secrets(api, writer, setup):
    sub_id = setup["id"]
    before = (api.get("/channels").get_json(), api.get(f"/webhooks/subscriptions/{sub_id}").get_json())

    _forbidden(writer.post("/channels", {"name": "woo", "format": "woocommerce", "secret": "s" * 12}))
    _forbidden(writer.post("/channels", {"name": "site2", "format": "generic"}))  # would answer a generated one
    _forbidden(writer.post("/channels/site/secret", {"keep_previous_hours": 0}))
    _forbidden(writer.post("/webhooks/subscriptions", {"url": "https://erp.example.com/in", "events": ["*"]}))
    _forbidden(writer.post(f"/webhooks/subscriptions/{sub_id}/secret", {}))
    _forbidden(writer.client.patch(f"/api/v1/webhooks/subscriptions/{sub_id}", json={"url": "https://evil.example/"},
                                   headers={"Authorization": f"Bearer {writer.key}"}))

    after = (api.get("/channels").get_json(), api.get(f"/webhooks/subscriptions/{sub_id}").get_json())
    assert after == before
    assert [c["name"] for c in after[0]] == ["site"] and after[1]["url"] == setup["url"]
    assert after[1]["previous_secret_expires_at"] is None and after[0][0]["previous_secret_expires_at"] is None


def test_a_write_key_still_runs_the_channels_and_subscriptions(writer, setup):
    sub_id = setup["id"]
    assert writer.get("/channels").status_code == 200
    assert writer.get("/channels/site/deliveries").status_code == 200
    patch = writer.client.patch("/api/v1/channels/site", json={"sku_map": {"1": "MUG"}},
                                headers={"Authorization": f"Bearer {writer.key}"})
    assert patch.status_code == 200 and patch.get_json()["sku_map"] == {"1": "MUG"}
    patch = writer.client.patch(f"/api/v1/webhooks/subscriptions/{sub_id}", json={"active": False},
                                headers={"Authorization": f"Bearer {writer.key}"})
    assert patch.status_code == 200 and patch.get_json()["status"] == "disabled"
    listed = writer.get(f"/webhooks/subscriptions/{sub_id}").get_json()
    assert "secret" not in listed  # a subscription's secret is only ever in the answer that made it
    assert all("secret" not in s for s in writer.get("/webhooks/subscriptions").get_json())


def test_the_admin_key_creates_and_rotates_secrets(api, setup):
    assert setup["secret"].startswith("whsec_")
    rotated = api.post(f"/webhooks/subscriptions/{setup['id']}/secret", {})
    assert rotated.status_code == 200 and rotated.get_json()["secret"] not in (None, setup["secret"])
    rotated = api.post("/channels/site/secret", {})
    assert rotated.status_code == 200 and rotated.get_json()["secret"].startswith("whsec_")
    created = api.post("/channels", {"name": "site2", "format": "generic"})
    assert created.status_code == 201 and created.get_json()["secret"].startswith("whsec_")


def test_the_openapi_says_which_operations_need_the_admin_scope(app):
    spec = app.test_client().get("/api/openapi.json").get_json()["paths"]
    for path, method in (("/api/v1/channels", "post"), ("/api/v1/channels/{name}/secret", "post"),
                         ("/api/v1/webhooks/subscriptions", "post"),
                         ("/api/v1/webhooks/subscriptions/{subscription_id}/secret", "post")):
        text = spec[path][method]["responses"]["403"]["description"]
        assert "lacks the admin scope" in text and "secret" in text and "write key gets 403" in text, (path, text)
    assert "admin scope" in spec["/api/v1/webhooks/subscriptions/{subscription_id}"]["patch"]["responses"]["403"][
        "description"]
    assert spec["/api/v1/channels"]["get"]["responses"]["403"]["description"] == "the API key lacks the read scope"
    assert "write scope" in spec["/api/v1/channels/{name}"]["patch"]["responses"]["403"]["description"]
