"""``hookshop crm sync --since`` (backfill in pages, resumable from its checkpoint), ``hookshop crm pull``
(a Contact's VIP flag changed in Salesforce reaches the customer profile), the admin screen (both databases)."""

from __future__ import annotations

import pytest

from .conftest import records


def _forget_salesforce(app, fake) -> None:
    """As if the plugin were installed on a shop that already has customers and orders."""
    from sqlalchemy import delete

    from engine.plugin_api import db, transaction
    from plugins.crm_salesforce.models import SyncRecord

    with app.app_context():
        with transaction():
            db.session.execute(delete(SyncRecord))
        db.session.remove()
    for rows in fake.records.values():
        rows.clear()
    fake.calls.clear()


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["crm", *args])


class TestBackfill:
    @pytest.fixture
    def crm_settings(self):
        return {"SALESFORCE_BATCH": 2}

    def test_the_backfill_pushes_pages_and_resumes_after_the_last_page_salesforce_took(self, shop):
        fake, app = shop.fake, shop.app
        placed = [shop.orders.place([("MUG", 1)], email=f"c{n}@example.com") for n in range(5)]
        _forget_salesforce(app, fake)
        fake.api_max = fake.api_used + 4  # three pages of contacts, then one of orders: the fifth call is refused
        first = _cli(app, "sync", "--since", "2020-01-01")
        assert first.exit_code == 1, first.output
        assert "REQUEST_LIMIT_EXCEEDED" in first.output and "Run the same command again to resume" in first.output
        assert len(fake.records["Contact"]) == 5 and len(fake.records["Order"]) == 2
        fake.api_max = 15000
        fake.calls.clear()
        second = _cli(app, "sync", "--since", "2020-01-01")
        assert second.exit_code == 0, second.output
        assert "resuming after order" in second.output
        assert [c.path.split("/")[-2] for c in fake.data_calls("collections")] == ["Order", "Order"]
        assert sorted(fake.records["Order"]) == sorted(str(o["id"]) for o in placed)
        assert {r["status"] for r in records(app)} == {"synced"} and len(records(app)) == 10
        again = _cli(app, "sync", "--since", "2020-01-01")
        assert "is done" in again.output
        fake.calls.clear()
        restarted = _cli(app, "sync", "--since", "2020-01-01", "--restart", "--no-progress")
        assert restarted.exit_code == 0 and "10 records in 0 calls" in restarted.output  # synced: nothing sent

    def test_the_backfill_counts_only_what_changed_since_the_date(self, shop):
        shop.orders.place([("MUG", 1)])
        _forget_salesforce(shop.app, shop.fake)
        result = _cli(shop.app, "sync", "--since", "2999-01-01", "--no-progress")
        assert result.exit_code == 0 and "0 records in 0 calls" in result.output
        assert _cli(shop.app, "sync", "--since", "yesterday").exit_code == 2


def test_pull_puts_a_contacts_vip_flag_into_the_customer_profile(shop):
    fake, app = shop.fake, shop.app
    order = shop.orders.place([("MUG", 1)], email="vip@example.com")
    customer_id = order["customer"]["id"]
    assert fake.records["Contact"][str(customer_id)]["Hookshop_VIP__c"] is False
    fake.change("Contact", str(customer_id), Hookshop_VIP__c=True)
    pushes = len(fake.data_calls("collections"))
    result = _cli(app, "pull")
    assert result.exit_code == 0, result.output
    assert "1 customer profiles changed" in result.output
    assert shop.api.get(f"/customers/{customer_id}").get_json()["vip"] is True
    assert len(fake.data_calls("collections")) == pushes  # no echo: the Contact already holds the flag
    assert records(app, kind="contact")[0]["status"] == "synced"
    again = _cli(app, "pull")
    assert "0 customer profiles changed" in again.output
    query = fake.data_calls("query")[-1].path
    assert "LastModifiedDate+%3E+" in query or "LastModifiedDate%20%3E%20" in query or "LastModifiedDate > " in query
    assert shop.orders.place([("MUG", 1)], email="vip@example.com")["flags"].count("vip") == 1


def test_status_shows_the_counts_errors_and_the_api_requests_left(shop):
    shop.fake.remove_field("Order", "Hookshop_Gift__c")
    shop.orders.place([("MUG", 1)])
    result = _cli(shop.app, "status")
    assert result.exit_code == 0, result.output
    assert "synced 1" in result.output and "error 1" in result.output and "INVALID_FIELD" in result.output
    assert "API requests left today:" in result.output


def test_the_admin_screen_lists_the_errors_and_retries_one(shop):
    import re

    from engine.services import staff  # the test makes a staff user: not plugin code

    shop.fake.remove_field("Order", "Hookshop_Gift__c")
    order = shop.orders.place([("MUG", 1)])
    with shop.app.app_context():
        staff.create_user("cs@shop.example", "customer_service", "a staff password 1")
    client = shop.app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/admin/login", data={"email": "cs@shop.example", "password": "a staff password 1",
                                             "csrf_token": token}).status_code == 302
    screen = client.get("/admin/crm")
    html = screen.get_data(as_text=True)
    assert screen.status_code == 200 and "INVALID_FIELD" in html and "Hookshop_Gift__c" in html
    row = records(shop.app, kind="order")[0]
    assert f'data-record="{row["id"]}" data-status="error"' in html
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/admin/").get_data(as_text=True)).group(1)
    retried = client.post(f"/admin/crm/{row['id']}/retry", data={"csrf_token": token})
    assert retried.status_code == 302
    assert records(shop.app, kind="order")[0]["status"] == "pending"
    panel = client.get(f"/admin/orders/{order['id']}").get_data(as_text=True)
    assert "Salesforce" in panel


def test_the_mapping_file_renames_and_leaves_out_fields(tmp_path):
    from plugins.crm_salesforce.settings import SettingsError, load

    base = {"SALESFORCE_INSTANCE_URL": "https://shop.my.salesforce.com", "SALESFORCE_ACCESS_TOKEN": "t"}
    path = tmp_path / "mapping.toml"
    path.write_text('[order]\ntracking_number = "Tracking__c"\nchannel = false\n[opportunity_stages]\nshipped = "Won"\n')
    from plugins.crm_salesforce.mapping import field_map

    settings = load({**base, "SALESFORCE_MAPPING": str(path)})
    fields = field_map(settings, "order")
    assert fields["tracking_number"] == "Tracking__c" and "channel" not in fields
    path.write_text('{"order": {"colour": "Colour__c"}}')
    json_path = path.rename(tmp_path / "mapping.json")
    with pytest.raises(SettingsError, match="order.colour is not a field hookshop writes"):
        load({**base, "SALESFORCE_MAPPING": str(json_path)})
    with pytest.raises(SettingsError, match="HOOKSHOP_SALESFORCE_ACCESS_TOKEN"):
        load({"SALESFORCE_INSTANCE_URL": "https://shop.my.salesforce.com"})


def test_the_plugins_models_match_its_migrations_and_it_passes_the_kits_plugin_check(shop):
    from engine.plugin_api import check_migrations, check_plugin
    from plugins import crm_salesforce

    check_migrations(shop.app)
    check_plugin(crm_salesforce)



def test_the_plugins_branch_downgrades_to_base_and_upgrades_again(shop):
    import sqlalchemy as sa

    from engine.plugin_api import db

    app = shop.app
    run = app.test_cli_runner().invoke
    with app.app_context():
        db.session.remove()
    down = run(args=["db", "downgrade", "crm_salesforce@base"])
    assert down.exit_code == 0, down.output
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
    assert not {"crm_salesforce_records", "crm_salesforce_checkpoints"} & tables and "orders" in tables
    assert run(args=["db", "upgrade"]).exit_code == 0
    current = run(args=["db", "current"]).output
    assert "crm_salesforce: 0001_crm_salesforce_baseline (head)" in current, current
    assert run(args=["db", "check"]).exit_code == 0
