"""The plugin's routes keep the OpenAPI document valid: the core's document checks (tests/test_openapi.py)
run on the document of an app with crm_salesforce loaded, and a live answer matches its schema."""

from __future__ import annotations

import pytest
import test_openapi as core_checks  # tests/ is on the path (the root conftest's directory)


@pytest.fixture
def hookshop_database():
    return "sqlite"  # the document is the same on every database


@pytest.fixture
def spec(shop):
    resp = shop.app.test_client().get("/api/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def test_the_crm_routes_are_documented_and_pass_the_core_checks(spec):
    paths = {p for p in spec["paths"] if p.startswith("/api/v1/crm/salesforce")}
    assert paths == {"/api/v1/crm/salesforce/sync", "/api/v1/crm/salesforce/sync/{record_id}",
                     "/api/v1/crm/salesforce/sync/{record_id}/retry"}
    core_checks.test_error_schema_has_string_code_message_and_errors(spec)
    core_checks.test_every_protected_operation_documents_401_and_the_api_key(spec)
    core_checks.test_every_error_response_uses_the_error_schema(spec)
    core_checks.test_operations_on_a_resource_document_404(spec)
    core_checks.test_bodies_and_responses_are_documented(spec)


def test_a_bad_filter_is_a_422_naming_the_field(shop):
    resp = shop.api.get("/crm/salesforce/sync?status=lost")
    assert resp.status_code == 422 and "status" in str(resp.get_json()["errors"])
    assert shop.api.get("/crm/salesforce/sync/12345").status_code == 404


def test_without_an_instance_the_plugin_is_off_and_says_why():
    from engine.app import create_app
    app = create_app({"DATABASE_URL": "sqlite://", "TESTING": True, "REDIS_URL": None})
    info = {i.name: i for i in app.extensions["hookshop"].infos}["crm_salesforce"]
    assert info.plugin is None or "HOOKSHOP_SALESFORCE_INSTANCE_URL is not set" in str(info.reason)
    assert "HOOKSHOP_SALESFORCE_INSTANCE_URL is not set" in str(info.reason)
