"""API keys through the admin endpoints: admin scope, shown once, revocable."""

from conftest import ApiClient, new_key


def test_admin_creates_lists_and_revokes_keys(api, app):
    resp = api.post("/admin/api-keys", {"name": "warehouse tablet", "scopes": ["read", "write"]})
    assert resp.status_code == 201
    created = resp.get_json()
    assert created["key"].startswith("hs_") and created["scopes"] == ["read", "write"]
    tablet = ApiClient(app.test_client(), created["key"])
    assert tablet.get("/orders").status_code == 200

    listed = api.get("/admin/api-keys").get_json()
    assert [k["name"] for k in listed] == ["test", "warehouse tablet"]
    assert all("key" not in k for k in listed)

    assert tablet.get("/admin/api-keys").status_code == 403
    assert api.post(f"/admin/api-keys/{created['id']}/revoke").get_json()["revoked_at"]
    resp = tablet.get("/orders")
    assert resp.status_code == 401 and resp.get_json()["code"] == "unauthorized"


def test_bad_scopes_are_rejected(api, app):
    resp = api.post("/admin/api-keys", {"name": "x", "scopes": ["root"]})
    assert resp.status_code == 422
    assert "scopes" in resp.get_json()["errors"]
    reader = ApiClient(app.test_client(), new_key(app, scopes=("read",)))
    assert reader.post("/admin/api-keys", {"name": "y", "scopes": ["read"]}).status_code == 403
