"""The plugins' admin screens in a real browser (Debian's chromium through Playwright): the plugins list, the
webhooks screen with a redelivery, the notifications log and the accounting journal, with screenshots."""

from __future__ import annotations

import re

import pytest
from conftest import place

from .conftest import browser_login, make_staff, screenshot
from .test_panels import LOOPBACK, Receiver, confirmed_order

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL


@pytest.fixture
def app_config():
    return {"CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": LOOPBACK, "CHANNEL_WEBHOOK_TIMEOUT": 5}


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.stop()


def test_plugin_screens_in_a_browser(app, api, browser, served, receiver):
    receiver.status = 503
    api.post("/webhooks/subscriptions", {"url": receiver.url, "events": ["order_placed", "order_confirmed"],
                                         "description": "ERP"})
    order = confirmed_order(api)
    place(api, [("MUG", 1)], email="second@example.com")
    email = make_staff(app, "owner")
    page = browser.new_page()
    browser_login(page, served, email)

    page.get_by_role("link", name="Plugins", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/plugins$"))
    assert page.get_by_role("heading", name="Plugins").is_visible()
    for name in ("payments_manual", "channel_webhook", "notify_email", "accounting_export", "payments_stripe"):
        assert page.locator(f'tr[data-plugin="{name}"]').is_visible()
    assert "STRIPE_SECRET_KEY" in page.locator('tr[data-plugin="payments_stripe"]').inner_text()
    screenshot(page, "plugins")

    page.get_by_role("link", name="Webhooks", exact=True).first.click()
    page.wait_for_url(re.compile(r"/admin/webhooks$"))
    rows = page.locator("#deliveries tbody tr")
    assert rows.count() == 3  # placed, confirmed, placed: each failed once (503)
    first = page.locator("#deliveries tbody tr").last
    assert "HTTP 503" in first.inner_text()
    receiver.status = 200
    first.get_by_role("button", name="Redeliver").click()
    page.wait_for_url(re.compile(r"/admin/webhooks"))
    assert page.get_by_text("redelivered: the receiver answered 200").is_visible()
    assert page.locator('#deliveries tr[data-status="delivered"]').count() == 1
    screenshot(page, "webhooks")

    page.get_by_role("link", name="Notifications", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/notifications$"))
    log = page.locator("#notifications tbody").inner_text()
    assert "a***@example.com" in log and "s***@example.com" in log and "Order received" in log
    assert "Receipt" in log and "ann@example.com" not in log
    screenshot(page, "notifications")

    page.get_by_role("link", name="Accounting", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/accounting$"))
    journal = page.locator("#journal > tbody").inner_text()
    assert order["number"] in journal and "Sale" in journal and "€25.80" in journal
    with page.expect_download() as download:
        page.get_by_role("link", name="csv", exact=True).click()
    assert download.value.suggested_filename.endswith(".csv")
    screenshot(page, "accounting")

    # Turkish: the plugins' screens too
    with page.expect_navigation():
        page.select_option("#admin-language", "tr")
    page.goto(served + "/admin/accounting")
    assert page.get_by_role("heading", name="Yevmiye kayıtları").is_visible()
    nav = page.locator("header nav").inner_text()
    assert "Muhasebe" in nav and "Bildirimler" in nav and "Webhook'lar" in nav and "Eklentiler" in nav
    page.close()
