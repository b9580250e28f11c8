"""The CRM screen in a real browser (Debian's chromium through Playwright): a record Salesforce refused is listed
with its error, staff retry it, the filter shows the retried record waiting, and the order page has its
Salesforce section. Screenshots go to test-artifacts/screens/."""

from __future__ import annotations

import re

import pytest
from admin.conftest import PASSWORD, browser_login, screenshot
from conftest import live_server

from .conftest import records

pytestmark = pytest.mark.parametrize("hookshop_database", ["sqlite"])  # the browser checks the screen, not SQL


def test_staff_see_a_refused_record_retry_it_and_find_it_on_the_order_page(shop, browser):
    from engine.services import staff  # the test makes a staff user: not plugin code

    shop.fake.remove_field("Order", "Hookshop_Gift__c")
    order = shop.orders.place([("MUG", 1)])
    refused = records(shop.app, kind="order")[0]
    assert refused["status"] == "error"
    with shop.app.app_context():
        staff.create_user("cs@shop.example", "customer_service", PASSWORD)

    with live_server(shop.app) as base:
        page = browser.new_page()
        browser_login(page, base, "cs@shop.example")
        page.get_by_role("link", name="Salesforce", exact=True).first.click()
        page.wait_for_url(re.compile(r"/admin/crm$"))
        assert page.get_by_role("heading", name="Salesforce").is_visible()
        row = page.locator(f'#crm-records tr[data-record="{refused["id"]}"]')
        assert row.get_attribute("data-status") == "error"
        text = row.inner_text()
        assert "Refused by Salesforce" in text and "Hookshop_Gift__c" in text
        assert text.count("INVALID_FIELD") == 1  # the code once, beside the message without it
        # the contact went through: the default filter shows only what Salesforce refused
        assert page.locator('#crm-records tr[data-status="synced"]').count() == 0
        screenshot(page, "crm-errors")

        row.get_by_role("button", name="Retry").click()
        page.wait_for_url(re.compile(r"/admin/crm"))
        assert page.get_by_text("The record is pushed to Salesforce again within a minute.").is_visible()
        assert records(shop.app, kind="order")[0]["status"] == "pending"

        page.locator("#crm-status").select_option("pending")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"status=pending"))
        waiting = page.locator(f'#crm-records tr[data-record="{refused["id"]}"]')
        assert waiting.get_attribute("data-status") == "pending"
        assert waiting.get_by_role("button", name="Retry").count() == 0  # only a refused record has the button

        page.goto(f"{base}/admin/orders/{order['id']}")
        section = page.locator("section", has=page.get_by_role("heading", name="Salesforce"))
        assert section.count() >= 1 and "Order" in section.first.inner_text()
        screenshot(page, "crm-order-panel")
        page.close()
