"""The permission matrix over every admin route × every role, server side: a role without the route's
permission gets 403 and changes nothing; a role with it is never refused. Every admin route names a
permission (a new screen cannot forget its check)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from engine.admin import permissions
from engine.db import db
from engine.models import OrderEvent, StaffUser, StockMovement

from .conftest import log_in, make_staff

DUMMY = {"int": "1", "string": "X", "path": "MAIN", "code_path": "X", "location_path": "MAIN"}


def admin_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.endpoint not in permissions.PUBLIC:
            yield rule


def concrete(rule) -> str:
    path = rule.rule
    for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule):
        path = re.sub(r"<[^>]*\b" + name + ">", DUMMY.get(converter or "string", "1"), path, count=1)
    return path


def test_every_admin_route_names_a_permission(app):
    rules = list(admin_rules(app))
    assert len(rules) >= 5
    missing = [r.endpoint for r in rules if getattr(app.view_functions[r.endpoint], "admin_permission", None)
               is None]
    assert missing == []


def _state(app):
    with app.app_context():
        counts = tuple(db.session.execute(select(func.count()).select_from(m)).scalar_one()
                       for m in (StaffUser, OrderEvent, StockMovement))
        db.session.remove()
    return counts


@pytest.mark.parametrize("role", permissions.ROLES)
def test_each_role_reaches_exactly_the_routes_its_permissions_allow(app, role):
    clients = {}
    for other in permissions.ROLES:
        make_staff(app, other)
    client = log_in(app, f"{role}@shop.example")
    clients[role] = client
    refused, reached = [], []
    for rule in admin_rules(app):
        permission = app.view_functions[rule.endpoint].admin_permission
        allowed = permissions.allowed(role, permission)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if allowed and method == "POST" and rule.endpoint == "admin_ui.logout":
                continue  # logging out is tested on its own (it would end this client's session)
            before = _state(app)
            url = concrete(rule)
            resp = client.get(url) if method == "GET" else client.post(url, {})
            if allowed:
                assert resp.status_code != 403, (method, url, permission)
                reached.append(url)
            else:
                assert resp.status_code == 403, (method, url, permission, resp.status_code)
                assert _state(app) == before, (method, url)
                refused.append(url)
    assert reached  # every role has the dashboard at least
    if role == permissions.OWNER:
        assert refused == []


def test_no_admin_route_changes_state_on_get(app):
    """GET and HEAD only read: no admin view that takes GET also writes (it would be CSRF-free)."""
    make_staff(app, "owner")
    client = log_in(app, "owner@shop.example")
    before = _state(app)
    for rule in admin_rules(app):
        if "GET" in rule.methods:
            client.get(concrete(rule))
    assert _state(app) == before


def test_order_buttons_come_from_the_transition_table_and_the_role():
    from engine.domain.transitions import allowed_actions

    actions = allowed_actions("paid")
    assert permissions.order_actions("warehouse", actions) == ["pick"]
    assert permissions.order_actions("customer_service", actions) == ["hold", "cancel"]
    assert permissions.order_actions("accounting", actions) == []
    assert permissions.order_actions("owner", actions) == actions
    assert set(permissions.ORDER_ACTIONS) >= set(allowed_actions("placed")) | set(allowed_actions("shipped"))


def test_docs_print_the_matrix_as_the_code_has_it():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "admin.md").read_text(encoding="utf-8")
    assert permissions.matrix_markdown() in docs, "paste permissions.matrix_markdown() into docs/admin.md"


def test_the_menu_marks_the_screen_a_page_belongs_to(app):
    make_staff(app, "owner")
    client = log_in(app, "owner@shop.example")
    page = client.get("/admin/orders/999999").get_data(as_text=True)  # a page under Orders (here its 404)
    assert '<a href="/admin/orders" aria-current="page">' in page
    assert '<a href="/admin/" aria-current="page">' not in page
    home = client.get("/admin/").get_data(as_text=True)
    assert '<a href="/admin/" aria-current="page">' in home


def test_an_unchanged_live_poll_costs_only_the_token_query(app):
    """The dashboard's figures are queried only when the region is drawn again, not on every poll."""
    from sqlalchemy import event

    from engine.admin.live import change_token

    make_staff(app, "owner")
    client = log_in(app, "owner@shop.example")
    client.get("/admin/")  # the session's last-seen write is behind us
    with app.app_context():
        token = change_token()
        engine = db.engine
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get("/admin/dashboard/live", query_string={"since": token}).status_code == 204
    finally:
        event.remove(engine, "before_cursor_execute", count)
    figures = [s for s in statements if "GROUP BY" in s.upper()]
    assert figures == [] and len(statements) <= 3, statements
