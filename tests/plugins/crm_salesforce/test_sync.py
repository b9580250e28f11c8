"""crm_salesforce against the loopback Salesforce, through the real simple-salesforce client (both
databases): an order's life, replays, session expiry, outages, field errors, bulk pushes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.testing.contracts import StageHookContract

from .conftest import WEB_ACCOUNT, records

LIFE = ["placed", "paid", "picked", "confirmed", "packed", "shipped", "delivered"]


def _statuses(fake) -> list[str]:
    return [r["Hookshop_Status__c"] for c in fake.data_calls("collections") if "/Order/" in c.path
            for r in c.body["records"]]


def test_an_orders_life_upserts_its_contact_then_the_order_at_every_stage(shop):
    fake = shop.fake
    order = shop.orders.advance(shop.orders.place([("MUG", 2)], email="ada@example.com"), "delivered")
    calls = fake.data_calls("collections")
    assert [c.path.split("/")[-2] for c in calls][:2] == ["Contact", "Order"]  # the contact first: the order refers to it
    assert all(c.method == "PATCH" and c.path.endswith("/Hookshop_Id__c") and "/v59.0/composite/sobjects/" in c.path
               and c.host == "shop.my.salesforce.com" for c in calls)
    # one upsert per stage; delivery completes the order at once (no follow-up set), and the hooks see the
    # order as it is now: the delivered hook may already send "completed", and the completed hook then nothing
    statuses = _statuses(fake)
    assert statuses[:6] == LIFE[:6] and statuses[6:] in (["delivered", "completed"], ["completed"])
    assert fake.logins == 1  # one login for the whole life
    mirrored = fake.records["Order"][str(order["id"])]
    shipment = order["shipments"][0]
    assert mirrored["Hookshop_Tracking_Number__c"] == shipment["tracking_number"]
    assert mirrored["Hookshop_Estimated_Delivery__c"] == shipment["estimated_delivery"]
    assert mirrored["Name"] == order["number"] and mirrored["AccountId"] == WEB_ACCOUNT
    assert mirrored["Hookshop_Total__c"] == order["totals"]["total"] / 100 and mirrored["Hookshop_Channel__c"] == "api"
    assert mirrored["Hookshop_Gift__c"] is False and mirrored["Hookshop_VIP__c"] is False
    contact = fake.records["Contact"][str(order["customer"]["id"])]
    assert contact["Email"] == "ada@example.com" and contact["LastName"] == "Tester"
    assert mirrored["BillToContactId"] == contact["Id"]
    rows = {(r["kind"], r["hookshop_id"]): r for r in records(shop.app)}
    assert rows[("order", order["id"])]["status"] == "synced"
    assert rows[("order", order["id"])]["salesforce_id"] == mirrored["Id"]
    assert rows[("contact", order["customer"]["id"])]["status"] == "synced"


def test_a_b2b_customer_gets_an_account_and_a_gift_order_its_flag(shop):
    order = shop.orders.place([("MUG", 1)], email="buyer@acme.example", gift=True)
    with shop.app.app_context():
        from engine.plugin_api import update_customer

        update_customer(order["customer"]["id"], {"company": "Acme GmbH"})
    shop.orders.advance(order, "paid")
    fake = shop.fake
    account = fake.records["Account"][str(order["customer"]["id"])]
    assert account["Name"] == "Acme GmbH"
    assert fake.records["Contact"][str(order["customer"]["id"])]["AccountId"] == account["Id"]
    mirrored = fake.records["Order"][str(order["id"])]
    assert mirrored["AccountId"] == account["Id"] and mirrored["Hookshop_Gift__c"] is True


class TestReplays(StageHookContract):
    """The kit's contract: every stage event handed to the plugin again changes nothing, and sends nothing."""

    plugin_name = "crm_salesforce"

    @pytest.fixture(autouse=True)
    def _fake(self, fake):
        self.fake = fake

    def observe(self, app):
        mirrored = {name: {k: {f: v for f, v in r.items() if f != "LastModifiedDate"} for k, r in rows.items()}
                    for name, rows in self.fake.records.items()}
        synced = [(r["kind"], r["hookshop_id"], r["status"], r["salesforce_id"], r["synced_hash"])
                  for r in records(app)]
        assert mirrored["Order"] and all(row[2] == "synced" for row in synced)
        return mirrored, synced, len(self.fake.data_calls())


def test_an_expired_session_is_logged_in_again_and_the_call_repeated(shop):
    fake = shop.fake
    order = shop.orders.place([("MUG", 1)])
    fake.expire_sessions()
    shop.orders.advance(order, "paid")
    assert fake.logins == 2
    statuses = [c.status for c in fake.calls if c.kind in ("collections", "login")][-3:]
    assert statuses == [401, 200, 200]  # refused, the SOAP login again, the same call accepted
    assert fake.records["Order"][str(order["id"])]["Hookshop_Status__c"] == "paid"
    assert {r["status"] for r in records(shop.app)} == {"synced"}


class TestAccessToken:
    @pytest.fixture
    def crm_settings(self):
        return {"SALESFORCE_USERNAME": None, "SALESFORCE_PASSWORD": None, "SALESFORCE_SECURITY_TOKEN": None,
                "SALESFORCE_ACCESS_TOKEN": "00D000000000001!oauth"}

    def test_an_oauth_token_is_used_as_it_is_and_its_expiry_is_reported(self, shop):
        fake = shop.fake
        fake.sessions.add("00D000000000001!oauth")
        order = shop.orders.place([("MUG", 1)])
        assert fake.logins == 0 and fake.records["Order"][str(order["id"])]
        fake.expire_sessions()
        paid = shop.orders.advance(order, "paid")
        assert paid["status"] == "paid"  # the order goes on
        row = records(shop.app, kind="order")[0]
        assert row["status"] == "pending" and row["error_code"] == "INVALID_SESSION_ID"
        assert "HOOKSHOP_SALESFORCE_ACCESS_TOKEN" in row["last_error"]


@pytest.mark.parametrize("status,code", [(503, "SERVER_UNAVAILABLE"), (403, "REQUEST_LIMIT_EXCEEDED")])
def test_an_unavailable_salesforce_is_retried_by_the_relay(shop, hookshop_run_jobs, status, code):
    from engine.plugin_api import utcnow

    fake = shop.fake
    fake.fail_next(status, code)
    order = shop.orders.place([("MUG", 1)])
    assert order["status"] == "placed"  # never blocks the order
    rows = records(shop.app, kind="contact")
    assert rows[0]["status"] == "pending" and rows[0]["error_code"] == code and "(retried)" in rows[0]["last_error"]
    assert str(order["id"]) not in fake.records["Order"]
    with shop.app.app_context():
        from engine import outbox  # the test reads the core's outbox: not plugin code
        from engine.plugin_api import db

        [event] = outbox.events(hook="order_placed")
        assert event.status == "pending" and "SyncDeferred" in (event.last_error or "")
        db.session.remove()
    assert hookshop_run_jobs(utcnow() + timedelta(seconds=1)) == 1  # the relay's retry
    assert fake.records["Order"][str(order["id"])]["Hookshop_Status__c"] == "placed"
    assert {r["status"] for r in records(shop.app)} == {"synced"}


def test_a_missing_field_is_reported_on_the_record_and_the_order_goes_on(shop):
    fake = shop.fake
    fake.remove_field("Order", "Hookshop_Tracking_Number__c")
    order = shop.orders.advance(shop.orders.place([("MUG", 1)]), "shipped")
    assert order["status"] == "shipped"
    row = records(shop.app, kind="order")[0]
    assert row["status"] == "error" and row["error_code"] == "INVALID_FIELD"
    assert "No such column 'Hookshop_Tracking_Number__c' on entity 'Order'" in row["last_error"]
    assert records(shop.app, kind="contact")[0]["status"] == "synced"
    listed = shop.api.get("/crm/salesforce/sync?status=error").get_json()
    assert [(i["kind"], i["hookshop_id"], i["error_code"]) for i in listed["items"]] == [("order", order["id"],
                                                                                          "INVALID_FIELD")]
    assert listed["counts"]["error"] == 1
    calls = len(fake.data_calls())
    shop.orders.advance(order, "delivered")  # a refused record is pushed again when it changes
    assert len(fake.data_calls()) == calls + 1


class TestRequiredField:
    @pytest.fixture
    def crm_settings(self):
        return {"SALESFORCE_DEFAULT_ACCOUNT_ID": None}

    def test_a_required_field_missing_is_that_records_error_only(self, shop):
        order = shop.orders.advance(shop.orders.place([("MUG", 1)]), "paid")
        assert order["status"] == "paid"
        row = records(shop.app, kind="order")[0]
        assert row["status"] == "error" and row["error_code"] == "REQUIRED_FIELD_MISSING"
        assert "AccountId" in row["last_error"]
        assert records(shop.app, kind="contact")[0]["status"] == "synced"


def test_a_burst_goes_in_collections_calls_of_at_most_200(shop):
    from plugins.crm_salesforce import sync

    fake = shop.fake
    with shop.app.app_context():
        from engine.plugin_api import transaction

        with transaction():
            for n in range(1, 451):
                sync.mark("contact", 10_000 + n, "Contact", {"Hookshop_Id__c": str(10_000 + n), "LastName": f"N{n}"})
        result = sync.push()
    calls = fake.data_calls("collections")
    assert [len(c.body["records"]) for c in calls] == [200, 200, 50]
    assert result["synced"] == 450 and result["calls"] == 3
    assert len(fake.records["Contact"]) == 450
    with shop.app.app_context():
        assert sync.push()["calls"] == 0  # nothing waits any more


def test_staff_retry_pushes_a_refused_record_again_from_the_sweep(shop, hookshop_run_jobs):
    from engine.plugin_api import utcnow

    fake = shop.fake
    fake.remove_field("Order", "Hookshop_Channel__c")
    order = shop.orders.place([("MUG", 1)])
    row = records(shop.app, kind="order")[0]
    assert row["status"] == "error"
    fake.fields["Order"] = fake.fields["Order"] | {"Hookshop_Channel__c"}  # the admin created the field
    answer = shop.api.post(f"/crm/salesforce/sync/{row['id']}/retry")
    assert answer.status_code == 200 and answer.get_json()["status"] == "pending"
    assert str(order["id"]) not in fake.records["Order"]  # no Salesforce call in the request
    hookshop_run_jobs(utcnow() + timedelta(seconds=1))
    assert records(shop.app, kind="order")[0]["status"] == "synced"
    assert fake.records["Order"][str(order["id"])]["Hookshop_Channel__c"] == "api"
    assert shop.api.post("/crm/salesforce/sync/999999/retry").status_code == 404


def test_an_unreachable_salesforce_keeps_the_records_pending_and_the_order_goes_on(shop):
    shop.fake.stop()  # connection refused
    order = shop.orders.place([("MUG", 1)])
    assert order["status"] == "placed"
    row = records(shop.app, kind="contact")[0]
    assert row["status"] == "pending" and row["error_code"] == "NETWORK"
    assert records(shop.app, kind="order")[0]["status"] == "pending"  # not tried: its contact waits


def test_two_pushers_at_once_send_each_record_once(shop):
    import threading

    from plugins.crm_salesforce import sync

    fake = shop.fake
    fake.delay = 0.05  # each call takes a while: the two pushers overlap
    with shop.app.app_context():
        from engine.plugin_api import transaction

        with transaction():
            for n in range(1, 301):
                sync.mark("contact", 20_000 + n, "Contact", {"Hookshop_Id__c": str(20_000 + n), "LastName": f"N{n}"})
    results = []

    def pusher():
        with shop.app.app_context():
            results.append(sync.push())

    threads = [threading.Thread(target=pusher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [r["Hookshop_Id__c"] for c in fake.data_calls("collections") for r in c.body["records"]]
    assert sorted(sent) == sorted(str(20_000 + n) for n in range(1, 301))  # every record once, none twice
    assert sum(r["synced"] for r in results) == 300


def test_after_an_outage_the_first_retry_sends_everything_waiting_in_one_call_per_object(shop, hookshop_run_jobs):
    from engine.plugin_api import utcnow

    fake = shop.fake
    fake.fail_next(503, times=5)
    placed = [shop.orders.place([("MUG", 1)], email=f"burst{n}@example.com") for n in range(5)]
    assert {r["status"] for r in records(shop.app)} == {"pending"}
    fake.calls.clear()
    assert hookshop_run_jobs(utcnow() + timedelta(seconds=1)) == 5  # the relay retries the five events
    calls = fake.data_calls("collections")
    assert [(c.path.split("/")[-2], len(c.body["records"])) for c in calls] == [("Contact", 5), ("Order", 5)]
    assert sorted(fake.records["Order"]) == sorted(str(o["id"]) for o in placed)
    assert {r["status"] for r in records(shop.app)} == {"synced"}
