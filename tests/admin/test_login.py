"""Staff login done properly: Argon2id, a fresh server-side session at every login, logout that ends it on
the server, cookie flags, CSRF on every state change, throttled wrong passwords that do not lock the real
user out, and the password rules."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from engine.db import db
from engine.errors import Conflict, ValidationFailed
from engine.models import StaffSession, StaffUser
from engine.services import staff

from .conftest import PASSWORD, log_in, make_staff


def _login_form(client):
    page = client.get("/admin/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _post_login(client, email, password, token=None):
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": token or _login_form(client)})


def _session_cookie(client):
    cookie = client.get_cookie("hookshop_session")
    return cookie.value if cookie else None


def test_admin_pages_need_a_login(app):
    client = app.test_client()
    resp = client.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/admin/login")
    hx = client.get("/admin/dashboard/live", headers={"HX-Request": "true"})
    assert hx.status_code == 401 and hx.headers["HX-Redirect"].startswith("/admin/login")
    page = client.get("/admin/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in page and '<label for="password">Password</label>' in page


def test_login_opens_a_new_server_side_session_with_safe_cookie_flags(app):
    email = make_staff(app, "warehouse")
    client = app.test_client()
    token = _login_form(client)
    planted = _session_cookie(client)  # the anonymous session (holding the CSRF secret)
    resp = _post_login(client, email, PASSWORD, token)
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/"
    header = resp.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert _session_cookie(client) != planted
    with app.app_context():
        (row,) = db.session.execute(select(StaffSession)).scalars().all()
        user = db.session.execute(select(StaffUser).where(StaffUser.email == email)).scalar_one()
        assert row.user_id == user.id and len(row.token_hash) == 64
        assert user.password_hash.startswith("$argon2id$")
    assert client.get("/admin/").status_code == 200
    # a second login (another browser) is another session
    log_in(app, email)
    with app.app_context():
        assert len(db.session.execute(select(StaffSession)).scalars().all()) == 2


def test_logout_ends_the_session_on_the_server(app):
    email = make_staff(app, "accounting")
    client = log_in(app, email)
    copied = _session_cookie(client.client)
    resp = client.post("/admin/logout")
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/login"
    with app.app_context():
        assert db.session.execute(select(StaffSession)).scalars().all() == []
    # the cookie as it was before the logout no longer opens anything
    thief = app.test_client()
    thief.set_cookie("hookshop_session", copied)
    assert thief.get("/admin/").status_code == 302


def test_logout_is_not_a_get_and_needs_the_csrf_token(app):
    client = log_in(app, make_staff(app, "owner"))
    assert client.get("/admin/logout").status_code == 405
    refused = client.post("/admin/logout", csrf=False)
    assert refused.status_code == 400
    assert client.get("/admin/").status_code == 200  # still logged in


def test_a_form_without_its_csrf_token_changes_nothing(app):
    client = log_in(app, make_staff(app, "owner"))
    resp = client.post("/admin/staff", {"email": "new@shop.example", "role": "warehouse",
                                        "password": "another long one 9"}, csrf=False)
    assert resp.status_code == 400
    resp = client.post("/admin/staff", {"email": "new@shop.example", "role": "warehouse",
                                        "password": "another long one 9", "csrf_token": "forged"}, csrf=False)
    assert resp.status_code == 400
    with app.app_context():
        assert db.session.execute(select(StaffUser.email).where(StaffUser.email == "new@shop.example")).first() is None
    # htmx requests send it as a header
    ok = client.client.post("/admin/me/language", data={"locale": "tr"}, headers={"X-CSRFToken": client.token()})
    assert ok.status_code == 302


def test_wrong_passwords_are_throttled_without_locking_out_the_real_user(app):
    email = make_staff(app, "customer_service")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    codes = [_post_login(attacker, email, f"guess {n}").status_code for n in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    slowed = _post_login(attacker, email, PASSWORD)  # even the right password waits out the window
    assert slowed.status_code == 429 and "Too many failed attempts" in slowed.get_data(as_text=True)
    owner = app.test_client()  # the real user, from their own address
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.2"
    assert _post_login(owner, email, PASSWORD).status_code == 302


def test_a_successful_login_does_not_count_against_the_limit(app):
    email = make_staff(app, "warehouse")
    for _ in range(7):
        client = app.test_client()
        assert _post_login(client, email, PASSWORD).status_code == 302


def test_password_rules():
    with pytest.raises(ValidationFailed, match="at least 8"):
        staff.check_password("short1")
    with pytest.raises(ValidationFailed, match="most common"):
        staff.check_password("password123")
    with pytest.raises(ValidationFailed, match="most common"):
        staff.check_password("Sunshine")
    with pytest.raises(ValidationFailed, match="e-mail"):
        staff.check_password("ann@shop.example", "ann@shop.example")
    staff.check_password("tulip ferry 42 blue")


def test_unknown_role_and_duplicate_user_are_refused(ctx):
    with pytest.raises(ValidationFailed, match="role"):
        staff.create_user("x@shop.example", "janitor", PASSWORD)
    staff.create_user("x@shop.example", "admin", PASSWORD)  # the earlier name of owner
    with pytest.raises(Conflict):
        staff.create_user("X@shop.example", "warehouse", PASSWORD)
    user = db.session.execute(select(StaffUser).where(StaffUser.email == "x@shop.example")).scalar_one()
    assert user.role == "owner"


def test_an_earlier_werkzeug_hash_still_logs_in_and_becomes_argon2id(app):
    email = make_staff(app, "warehouse")
    with app.app_context():
        db.session.execute(update(StaffUser).values(password_hash=generate_password_hash("an old password 7")))
        db.session.commit()
    log_in(app, email, "an old password 7")
    with app.app_context():
        assert db.session.execute(select(StaffUser.password_hash)).scalar_one().startswith("$argon2id$")


def test_a_deactivated_user_is_logged_out_everywhere_and_cannot_log_in(app):
    email = make_staff(app, "warehouse")
    make_staff(app, "owner")
    client = log_in(app, email)
    owner = log_in(app, "owner@shop.example")
    with app.app_context():
        user_id = db.session.execute(select(StaffUser.id).where(StaffUser.email == email)).scalar_one()
    assert owner.post(f"/admin/staff/{user_id}", {"active": "0"}).status_code == 302
    assert client.get("/admin/").status_code == 302
    assert _post_login(app.test_client(), email, PASSWORD).status_code == 401


def test_the_last_active_owner_stays(ctx):
    owner = staff.create_user("boss@shop.example", "owner", PASSWORD)
    with pytest.raises(Conflict, match="last active owner"):
        staff.update_user(owner.id, role="warehouse")
    with pytest.raises(Conflict, match="last active owner"):
        staff.update_user(owner.id, active=False)
    second = staff.create_user("boss2@shop.example", "owner", PASSWORD)
    assert staff.update_user(owner.id, role="warehouse").role == "warehouse"
    assert second.role == "owner"


def test_login_goes_back_only_to_an_admin_page(app):
    email = make_staff(app, "owner")
    for target, expected in (("/admin/staff", "/admin/staff"), ("https://evil.example/admin/", "/admin/"),
                             ("//evil.example/admin/", "/admin/"), ("/api/v1/orders", "/admin/")):
        client = app.test_client()
        token = _login_form(client)
        resp = client.post("/admin/login", query_string={"next": target},
                           data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert resp.headers["Location"] == expected, target


def test_security_headers_on_admin_pages(app):
    client = log_in(app, make_staff(app, "owner"))
    resp = client.get("/admin/")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
    assert client.get("/admin/static/htmx.min.js").status_code == 200


@pytest.fixture
def redis_url():
    import os

    import redis
    from conftest import service_missing

    url = os.environ.get("HOOKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        service_missing(f"Redis is not reachable at {url}")
    return url


@pytest.mark.parametrize("database", ["sqlite"])
def test_with_redis_the_login_counters_are_shared_by_every_process(database, tmp_path, request, redis_url):
    import uuid

    from conftest import make_app

    first = make_app(database, tmp_path, request, REDIS_URL=redis_url)
    email = make_staff(first, "warehouse", email=f"wh-{uuid.uuid4().hex}@shop.example")  # its own counters
    second = make_app(database, tmp_path, request, REDIS_URL=redis_url)
    codes = [_post_login((first if n % 2 else second).test_client(), email, f"guess {n}").status_code
             for n in range(6)]
    assert codes == [401] * 5 + [429]  # two apps, one count
    import redis

    assert redis.Redis.from_url(redis_url).keys(f"LIMITS:LIMITER/*{email}*"), "the counters are in Redis"


@pytest.mark.parametrize("database", ["sqlite"])
def test_behind_a_proxy_logins_are_counted_per_client_address(database, tmp_path, request):
    from conftest import make_app

    app = make_app(database, tmp_path, request, PROXY_COUNT=1)
    email = make_staff(app, "warehouse")

    def attempt(client_address, password):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.1"  # every request comes through the same proxy
        token = _login_form(client)
        return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token},
                           headers={"X-Forwarded-For": client_address}).status_code

    assert [attempt("203.0.113.7", f"guess {n}") for n in range(6)] == [401] * 5 + [429]
    assert attempt("198.51.100.2", PASSWORD) == 302  # the real user, behind the same proxy
