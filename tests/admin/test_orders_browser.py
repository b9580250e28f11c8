"""The orders screens in a real browser (Debian's chromium through Playwright): an order placed through the
API appears in the open list by itself, and a second browser context on the order's page sees its status
change (made through the API) without a reload. Screenshots ``orders`` and ``order-detail``."""

from __future__ import annotations

import re

import pytest
from conftest import place, product, receive

from .conftest import browser_login, make_staff, screenshot

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL

LIVE = 5000  # ms: the live regions poll every 2 s


def test_orders_appear_and_change_live_in_two_browsers(app, api, browser, served):
    product(api, "MUG", 1200)
    receive(api, "MUG", 20)
    first = place(api, [("MUG", 1)], email="ann@example.com")
    owner, warehouse = make_staff(app, "owner"), make_staff(app, "warehouse")

    one = browser.new_context(viewport={"width": 1280, "height": 900})
    lister = one.new_page()
    browser_login(lister, served, owner)
    lister.get_by_role("link", name="Orders", exact=True).click()
    lister.wait_for_url(re.compile(r"/admin/orders$"))
    assert lister.get_by_role("heading", name="Orders").is_visible()
    lister.evaluate("window.notReloaded = true")

    order = place(api, [("MUG", 2)], email="ann@example.com", gift=True)  # through the API, the list is open
    row = lister.locator(f'tr[data-order="{order["id"]}"]')
    row.wait_for(timeout=LIVE)
    assert row.locator(".badge.flag-gift").inner_text() == "Gift"
    assert row.locator(".badge.flag-repeat").inner_text() == "Repeat"
    assert lister.locator("tr[data-order]").first.get_attribute("data-order") == str(order["id"])
    assert lister.evaluate("window.notReloaded") is True
    screenshot(lister, "orders")

    two = browser.new_context(viewport={"width": 1280, "height": 900})
    detail = two.new_page()
    browser_login(detail, served, warehouse)
    detail.goto(f"{served}/admin/orders/{order['id']}")
    status = detail.locator("[data-order-status]")
    assert status.inner_text() == "Placed"
    assert detail.locator("[data-action]").count() == 0  # warehouse: nothing to do on a placed order
    detail.evaluate("window.notReloaded = true")

    assert api.post(f"/orders/{order['id']}/pay").status_code == 200  # the change, made elsewhere
    detail.locator('[data-order-status="paid"]').wait_for(timeout=LIVE)
    assert status.inner_text() == "Paid"
    pick = detail.locator('[data-action="pick"]')
    pick.wait_for(timeout=LIVE)  # the button the new status allows the warehouse
    assert pick.get_attribute("href") == f"/admin/pick/{order['id']}"
    assert detail.locator("ol.timeline li[data-kind=order_paid]").count() == 1
    assert detail.evaluate("window.notReloaded") is True
    lister.locator(f'tr[data-order="{order["id"]}"] [data-status="paid"]').wait_for(timeout=LIVE)
    assert lister.locator(f'tr[data-order="{first["id"]}"] [data-status="placed"]').count() == 1
    assert lister.evaluate("window.notReloaded") is True

    detail.get_by_label("Note").fill("fragile: extra padding")
    detail.get_by_role("button", name="Add note").click()
    detail.get_by_text("Note added.").wait_for()
    assert detail.locator("ul.notes").get_by_text("fragile: extra padding").is_visible()
    screenshot(detail, "order-detail")
    one.close()
    two.close()


def test_a_refused_transition_is_shown_in_the_browser(app, api, browser, served):
    product(api, "MUG", 1200)
    receive(api, "MUG", 5)
    order = place(api, [("MUG", 1)])
    page = browser.new_page()
    browser_login(page, served, make_staff(app, "customer_service"))
    page.goto(f"{served}/admin/orders/{order['id']}")
    page.get_by_role("button", name="Hold").wait_for()
    page.route(re.compile(r".*/live\?.*"), lambda route: route.abort())  # this page does not see what follows
    api.post(f"/orders/{order['id']}/cancel", {"reason": "changed mind"})  # meanwhile, elsewhere
    page.locator("#hold-reason").fill("check address")
    with page.expect_response(lambda r: r.url.endswith("/hold") and r.request.method == "POST") as info:
        page.get_by_role("button", name="Hold").click()
    assert info.value.status == 409
    assert "cannot hold an order that is cancelled" in page.get_by_role("alert").inner_text()
    assert page.locator('[data-order-status="cancelled"]').is_visible()
    page.close()
