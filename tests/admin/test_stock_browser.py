"""The stock screens in a real browser (Debian's chromium through Playwright): a warehouse user scans serials
into a receipt (Enter after each, a repeated one refused on the spot), receives them, and sees the levels
change, also when stock arrives through the API while the page is open."""

from __future__ import annotations

import re

import pytest
from conftest import product, receive
from playwright.sync_api import expect

from .conftest import browser_login, make_staff, screenshot

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL


def test_a_warehouse_user_receives_scanned_serials_and_sees_the_levels(app, api, browser, served):
    product(api, "CAM-Z5", track_serials=True, reorder_point=5)
    product(api, "MUG", barcode="4006381333931")
    receive(api, "MUG", 12)
    email = make_staff(app, "warehouse")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    browser_login(page, served, email)

    page.get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_role("heading", name="Stock")).to_be_visible()
    page.get_by_label("Search").fill("cam")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr[data-sku]")).to_have_count(1)
    page.get_by_role("link", name="CAM-Z5").click()
    expect(page.locator("[data-total=on_hand]")).to_have_text("0")

    scan = page.get_by_label("Scan")
    feedback = page.locator("#scan-feedback")
    for serial in ("Z5-0001", "Z5-0002", "Z5-0003"):  # typed quickly: each Enter is queued, none lost
        scan.type(serial)
        scan.press("Enter")
    expect(feedback).to_have_text(re.compile(r"Z5-0003 added \(3 on the list\)"))
    expect(feedback).to_have_class(re.compile("ok"))
    expect(page.locator("#serials-0")).to_have_value("Z5-0001\nZ5-0002\nZ5-0003")
    scan.type("Z5-0002")
    scan.press("Enter")
    expect(feedback).to_have_class(re.compile("error"))
    expect(feedback).to_contain_text("already on this list")
    expect(page.locator("#serials-0")).to_have_value("Z5-0001\nZ5-0002\nZ5-0003")
    expect(scan).to_be_focused()

    page.get_by_role("button", name="Receive").click()
    expect(page.get_by_role("status").filter(has_text="Received 3 of CAM-Z5")).to_be_visible()
    expect(page.locator("[data-total=on_hand]")).to_have_text("3")
    expect(page.locator("tr[data-serial]")).to_have_count(3)
    expect(page.locator(".badge.low-stock").first).to_be_visible()  # 3 available, reorder at 5

    # stock received elsewhere (the API) shows without a reload
    receive(api, "CAM-Z5", 1, serials=["Z5-0004"])
    expect(page.locator("[data-total=on_hand]")).to_have_text("4", timeout=5000)
    screenshot(page, "stock-product")

    page.goto(served + "/admin/stock")
    expect(page.locator('tr[data-sku="MUG"] td.num').first).to_have_text("12")
    screenshot(page, "stock")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Purchase orders").click()
    page.get_by_label("SKU 1", exact=True).fill("MUG")
    page.get_by_label("Quantity 1", exact=True).fill("6")
    page.get_by_role("button", name="Draft purchase order").click()
    expect(page.get_by_role("heading", name=re.compile("PO-"))).to_contain_text("Draft")
    page.get_by_role("button", name="Order from the supplier").click()
    expect(page.locator("[data-status]")).to_have_text("Ordered")
    page.get_by_label("Good units MUG").fill("6")
    page.get_by_role("button", name="Receive").click()
    expect(page.locator("[data-status]")).to_have_text("Received")
    expect(page.locator('tr[data-sku="MUG"] [data-col=received]')).to_have_text("6")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Purchase orders").click()
    expect(page.locator("tr[data-po]")).to_have_count(1)
    screenshot(page, "purchase-orders")
    assert api.get("/stock/MUG").get_json()["on_hand"] == 18
    context.close()
