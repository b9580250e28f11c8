"""Customer service in a real browser (Debian's chromium through Playwright): find a customer by e-mail, open
the return their order's customer asked for from the profile, approve it; screenshots of the customer list, the
profile, the returns list and the warehouse's receive form."""

from __future__ import annotations

import re

import pytest
from conftest import product, receive

from .conftest import browser_login, make_staff, screenshot
from .test_custret import request_return, shipped

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL


def test_customer_service_finds_a_customer_and_approves_their_return(app, api, browser, served):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 10)
    order = shipped(api, [("MUG", 2, None)], customer={"email": "zoe@example.com", "name": "Zoe Winter",
                                                       "shipping_address": {"line1": "Sample Street 12",
                                                                            "city": "Berlin", "postal_code": "10115",
                                                                            "country": "DE"}})
    shipped(api, [("MUG", 1, None)])  # another customer (Ann)
    rid = request_return(app, order, [{"sku": "MUG", "quantity": 1}])
    email = make_staff(app, "customer_service")
    page = browser.new_page()
    browser_login(page, served, email)
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search customers").fill("zoe@")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/admin/customers\?q=zoe"))
    rows = page.locator("table.custret-list tbody tr")
    assert rows.count() == 1 and "Zoe Winter" in rows.inner_text()
    screenshot(page, "customers")
    page.get_by_role("link", name="Zoe Winter").click()
    page.wait_for_url(re.compile(r"/admin/customers/\d+$"))
    assert page.get_by_role("heading", name=re.compile("Zoe Winter")).is_visible()
    assert page.get_by_role("link", name=f"#{order['number']}").first.is_visible()
    screenshot(page, "customer")
    page.get_by_role("link", name=f"Return {rid}").click()
    page.wait_for_url(re.compile(rf"/admin/returns/{rid}$"))
    assert page.locator("[data-return-status]").inner_text() == "Requested"
    assert page.get_by_role("button", name="Receive").count() == 0  # the warehouse's, not customer service's
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(rf"/admin/returns/{rid}$"))
    assert page.get_by_role("status").inner_text() == f"Return {rid}: Approved."
    assert page.locator("[data-return-status]").inner_text() == "Approved"
    assert page.get_by_role("button", name="Approve").count() == 0
    page.get_by_role("link", name="Returns", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/returns$"))
    assert "Approved" in page.locator(f'tr[data-return="{rid}"]').inner_text()
    screenshot(page, "returns")
    page.close()
    # the warehouse now sees the approved return's receive form (and no approve or reject)
    warehouse = browser.new_context().new_page()
    browser_login(warehouse, served, make_staff(app, "warehouse"))
    warehouse.goto(f"{served}/admin/returns/{rid}")
    assert warehouse.get_by_role("button", name="Receive").is_visible()
    assert warehouse.get_by_label("Damaged units of MUG (of 1)").is_visible()
    assert warehouse.get_by_role("button", name="Reject").count() == 0
    screenshot(warehouse, "return-receive")
    warehouse.context.close()
