"""Each role in a real browser: the menu shows only the screens its permissions allow, an order page only
the buttons its role and the order's status allow, and another department's route answers 403."""

from __future__ import annotations

import pytest
from conftest import ApiClient, new_key, order_body

from engine.admin import permissions

from .conftest import browser_login, make_staff

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL

# a screen of each department and the permission it needs
SCREENS = {"/admin/orders": "orders.view", "/admin/pick": "warehouse.pick", "/admin/stock": "stock.view",
           "/admin/purchase-orders": "purchasing.view", "/admin/customers": "customers.view",
           "/admin/refunds": "refunds.view", "/admin/accounting": "accounting.view",
           "/admin/notifications": "notifications.view", "/admin/webhooks": "webhooks.view",
           "/admin/plugins": "plugins.view", "/admin/staff": "staff.manage"}


def test_each_role_sees_its_screens_and_actions_and_gets_403_elsewhere(app, browser, served):
    api = ApiClient(app.test_client(), new_key(app))
    assert api.post("/products", {"sku": "MUG", "name": "Mug", "price": 900, "currency": "EUR"}).status_code == 201
    assert api.post("/stock/receipts", {"sku": "MUG", "quantity": 3}).status_code == 201
    order = api.post("/orders", order_body([("MUG", 1)])).get_json()
    assert api.post(f"/orders/{order['id']}/pay", {}).status_code in (200, 201)  # paid: hold, pick, cancel
    expected_buttons = {"owner": {"hold", "pick", "cancel"}, "warehouse": {"pick"},
                        "customer_service": {"hold", "cancel"}, "accounting": set()}
    for role in permissions.ROLES:
        email = make_staff(app, role)
        context = browser.new_context()
        page = context.new_page()
        browser_login(page, served, email)
        menu = {a.get_attribute("href") for a in page.locator("header nav a").all()}
        for path, permission in SCREENS.items():
            assert (path in menu) == permissions.allowed(role, permission), (role, path)
            answer = page.goto(served + path)
            if permissions.allowed(role, permission):
                assert answer.status == 200, (role, path)
            else:
                assert answer.status == 403, (role, path)
                assert page.get_by_role("alert").inner_text().startswith("Your role does not allow this")
        page.goto(f"{served}/admin/orders/{order['id']}")
        shown = {b.get_attribute("data-action") for b in page.locator("[data-action]").all()}
        assert shown == expected_buttons[role], role
        if role == "warehouse":
            page.locator("a[data-action=pick]").click()
            page.wait_for_url(f"{served}/admin/pick/{order['id']}")
            assert page.get_by_label("Scan").is_visible()
        context.close()
