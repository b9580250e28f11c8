"""Fixtures of the admin's tests: staff users logged in through the real login form (test client), and the app
served on a loopback port for the real browser (the ``browser`` fixture is the root conftest's: one Playwright per
test process, shared with the plugins' screen tests)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import live_server

from engine.services import staff

PASSWORD = "a staff password 1"
ARTIFACTS = Path(os.environ.get("HOOKSHOP_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


class StaffClient:
    """A test client logged in as one staff member; ``post`` sends the session's CSRF token (``csrf=False``
    leaves it out)."""

    def __init__(self, client, email: str):
        self.client, self.email, self._token = client, email, None

    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/admin/")
            self._token = CSRF.search(page.get_data(as_text=True)).group(1)
        return self._token

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, csrf=True, headers=None, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.client.post(path, data=data, headers=headers, **kw)


def make_staff(app, role: str, email: str | None = None, locale: str = "en") -> str:
    email = email or f"{role}@shop.example"
    with app.app_context():
        staff.create_user(email, role, PASSWORD, locale=locale)
    return email


def log_in(app, email: str, password: str = PASSWORD) -> StaffClient:
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return StaffClient(client, email)


@pytest.fixture
def staff_client(app):
    """``staff_client(role)``: a new staff user of that role, logged in."""
    made = {}

    def login_as(role: str = "owner", locale: str = "en") -> StaffClient:
        email = f"{role}{len(made) or ''}@shop.example"
        made[email] = make_staff(app, role, email, locale)
        return log_in(app, email)

    return login_as


@pytest.fixture
def served(app):
    """The app on a loopback port (werkzeug's threaded server): yields the base URL."""
    with live_server(app) as base:
        yield base


def browser_login(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=re.compile("Log in|Giriş")).click()
    page.wait_for_url(re.compile(r"/admin/(\?.*)?$|/admin/[^l].*"))


def screenshot(page, name: str) -> Path:
    """Save a screenshot as a test artifact (``test-artifacts/screens/<name>.png``, or under
    ``HOOKSHOP_TEST_ARTIFACTS``)."""
    path = ARTIFACTS / "screens" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
