"""The login in a real browser (Debian's chromium through Playwright): the labelled form, the session
cookie, a refused form without its CSRF token, throttled wrong passwords, and the Turkish interface."""

from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD, browser_login, make_staff, screenshot

pytestmark = pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screens, not the SQL


def test_log_in_and_out_in_a_browser(app, browser, served):
    email = make_staff(app, "owner")
    context = browser.new_context()
    page = context.new_page()
    page.goto(served + "/admin/")
    assert "/admin/login" in page.url
    screenshot(page, "login")
    browser_login(page, served, email)
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "hookshop_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    screenshot(page, "dashboard")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/admin/login"))
    assert page.get_by_text("You are logged out.").is_visible()
    page.goto(served + "/admin/")
    assert "/admin/login" in page.url
    context.close()


def test_a_form_without_its_csrf_token_is_refused_in_the_browser(app, browser, served):
    email = make_staff(app, "owner")
    page = browser.new_page()
    browser_login(page, served, email)
    page.goto(served + "/admin/staff")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_label("Email", exact=True).last.fill("new@shop.example")
    page.locator("#new-password").fill("another long one 9")
    with page.expect_response(lambda r: r.url.endswith("/admin/staff") and r.request.method == "POST") as info:
        page.get_by_role("button", name="Create user").click()
    assert info.value.status == 400
    page.goto(served + "/admin/staff")
    assert "new@shop.example" not in page.content()
    page.close()


def test_wrong_passwords_are_throttled_in_the_browser(app, browser, served):
    email = make_staff(app, "warehouse")
    page = browser.new_page()
    statuses = []
    for n in range(6):
        page.goto(served + "/admin/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(f"wrong {n}")
        with page.expect_response(lambda r: "/admin/login" in r.url and r.request.method == "POST") as info:
            page.get_by_role("button", name="Log in").click()
        statuses.append(info.value.status)
    assert statuses == [401] * 5 + [429]
    assert page.get_by_role("alert").inner_text().startswith("Too many failed attempts")
    page.close()


def test_the_turkish_interface(app, browser, served):
    email = make_staff(app, "owner", locale="tr")
    page = browser.new_page()
    browser_login(page, served, email, PASSWORD)
    assert page.get_by_role("heading", name="Pano").is_visible()
    assert page.get_by_role("button", name="Çıkış yap").is_visible()
    assert page.get_by_text("Aşamaya göre siparişler").is_visible()
    screenshot(page, "dashboard-tr")
    page.close()
