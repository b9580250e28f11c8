"""Pick, pack and ship in a real browser (Debian's chromium through Playwright), the way a barcode scanner
works: it types the code into the focused ``Scan`` input and presses Enter. An order placed through the
API (a serial-tracked PHONE and an untracked MUG) goes through pick (a wrong scan turns red, a double
Enter sends nothing more, scans typed while one is on its way are queued, not lost), pack and ship, up to
the tracking number; and the scan box fits a 360 px phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import browser_login, make_staff, screenshot
from .test_pickpack import MUG_BARCODE, paid_order, shop

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL


class Scans:
    """The scan requests the page sends (each one's ``code``)."""

    def __init__(self, page):
        self.codes: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request):
        if request.method == "POST" and request.url.endswith("/scan"):
            self.codes.append(re.search(r"(?:^|&)code=([^&]*)", request.post_data or "").group(1))


def scanner(page, code: str, enters: int = 1) -> None:
    """What a scanner does: the code typed fast into the focused input, then Enter."""
    page.keyboard.type(code)
    for _ in range(enters):
        page.keyboard.press("Enter")


def test_pick_pack_and_ship_an_order_with_a_scanner(app, api, browser, served):
    shop(api)
    order = paid_order(api)
    email = make_staff(app, "warehouse")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    sent = Scans(page)
    browser_login(page, served, email)
    page.get_by_role("link", name="Pick", exact=True).click()
    page.get_by_role("link", name=re.compile(order["number"])).click()

    box = page.get_by_label("Scan")
    expect(box).to_be_focused()
    ok, error = page.locator(".scan-feedback.ok"), page.locator(".scan-feedback.error")
    scanner(page, "SN-1")
    expect(ok).to_have_text("SN-1 picked, 1 of 2")
    expect(page.locator("body")).to_have_class(re.compile("scan-flash-ok"))
    expect(box).to_be_focused()

    # a wrong scan: red, specific, nothing recorded
    scanner(page, "CAP")
    expect(error).to_have_text(f"CAP: product CAP, which is not on order {order['number']}")
    expect(page.locator("body")).to_have_class(re.compile("scan-flash-error"))
    expect(box).to_be_focused()
    scanner(page, "SN-1")
    expect(error).to_have_text(f"SN-1: already picked for this order ({order['number']})")
    assert [line["picked_quantity"] for line in api.get(f"/orders/{order['id']}").get_json()["lines"]] == [0, 1]

    # a double Enter: the second finds the input empty and sends nothing
    scanner(page, "SN-2", enters=2)
    expect(ok).to_have_text("SN-2 picked, 2 of 2")
    # two scans typed in a row, the second while the first is on its way: queued, both recorded
    scanner(page, "MUG")
    scanner(page, MUG_BARCODE, enters=2)
    expect(page.locator("[data-progress]")).to_have_text("4 of 4 units picked")
    expect(ok).to_have_text(f"MUG ({MUG_BARCODE}) picked, 2 of 2")
    expect(page.locator("[data-complete]")).to_contain_text("All 4 units picked.")
    assert sent.codes == ["SN-1", "CAP", "SN-1", "SN-2", "MUG", MUG_BARCODE]
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "picked"
    screenshot(page, "pick")

    # confirm, then pack: every unit scanned again into the parcel
    page.get_by_role("button", name="Confirm order").click()
    page.wait_for_url(re.compile(rf"/admin/pack/{order['id']}$"))
    expect(page.get_by_role("status").first).to_contain_text(f"Order {order['number']} confirmed.")
    box = page.get_by_label("Scan")
    expect(box).to_be_focused()
    scanner(page, "SN-2")
    expect(ok).to_have_text("SN-2 in the parcel, 1 of 2")
    scanner(page, "SN-9")
    expect(error).to_have_text(f"SN-9: was not picked for order {order['number']}: pick it first")
    scanner(page, "SN-2", enters=2)
    expect(error).to_have_text("SN-2: scanned twice")
    scanner(page, "SN-1")
    scanner(page, "MUG")
    scanner(page, "MUG")
    expect(page.locator("[data-progress]")).to_have_text("4 of 4 units in the parcel")
    expect(page.locator("[data-complete]")).to_contain_text("All 4 units are in the parcel.")
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "confirmed"  # verifying records nothing
    screenshot(page, "pack")
    page.get_by_role("button", name="Pack", exact=True).click()
    page.wait_for_url(re.compile(rf"/admin/ship/{order['id']}$"))
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "packed"

    # ship: the carriers' rates, the shipment, its tracking number, label and packing slip
    rates = page.get_by_role("radio")
    assert rates.count() == len(api.get(f"/orders/{order['id']}/rates").get_json()) >= 2
    page.get_by_label(re.compile(r"generic · express")).check()
    page.get_by_role("button", name="Create shipment").click()
    page.wait_for_url(re.compile(rf"/admin/ship/{order['id']}$"))
    shipment = api.get(f"/orders/{order['id']}").get_json()["shipments"][0]
    assert shipment["service"] == "express"
    expect(page.locator("[data-tracking]")).to_have_text(shipment["tracking_number"])
    expect(page.get_by_role("status").first).to_contain_text(shipment["tracking_number"])
    for name in ("Print label (PDF)", "Print packing slip (PDF)"):
        href = page.get_by_role("link", name=name).get_attribute("href")
        resp = page.request.get(served + href)
        assert resp.status == 200 and resp.headers["content-type"] == "application/pdf"
        assert resp.body().startswith(b"%PDF")
    screenshot(page, "ship")
    context.close()


def test_the_scan_box_fits_a_phone(app, api, browser, served):
    shop(api)
    order = paid_order(api, gift=True)
    email = make_staff(app, "warehouse")
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    browser_login(page, served, email)
    page.goto(f"{served}/admin/pick/{order['id']}")
    box = page.get_by_label("Scan")
    expect(box).to_be_focused()
    scanner(page, "NO-SUCH-CODE")
    expect(page.locator(".scan-feedback.error")).to_contain_text("NO-SUCH-CODE: unknown code")
    scanner(page, "SN-1")
    expect(page.locator(".scan-feedback.ok")).to_have_text("SN-1 picked, 1 of 2")
    width = page.evaluate("window.innerWidth")
    assert width == 360
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no horizontal scroll
    for element in (box, page.locator(".scan-feedback"), page.locator("ol.stops")):
        rect = element.bounding_box()
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= width, rect
    assert box.bounding_box()["width"] >= 300  # the whole width, a big target
    # the feedback is seen without scrolling: right under the input, above the fold
    assert page.locator(".scan-feedback").bounding_box()["y"] < 740
    screenshot(page, "pick-phone")
    context.close()
