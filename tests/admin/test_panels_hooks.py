"""The admin's plugin hooks: ``admin_screens()`` (a plugin's screen in the navigation, its blueprint behind the
admin's gate with ``engine.admin.plugin_screens.protect``) and ``admin_order_panels(order)`` (sections of the
order page), with what start-up refuses."""

from __future__ import annotations

import re

import pytest
from conftest import make_app, place, product, receive
from flask import Blueprint, render_template, render_template_string
from flask_babel import lazy_gettext as _l

from engine import hookimpl
from engine.admin import plugin_screens
from engine.admin.permissions import require
from engine.admin.plugin_screens import AdminScreen, protect
from engine.app import create_app
from engine.db import db
from engine.errors import PluginError
from engine.models import Order

from .conftest import log_in, make_staff

PAGE = """{% extends "admin/base.html" %}{% block content %}<h1>{{ _("Low stock") }}</h1>
<form method="post" action="{{ url_for('bins_admin.recount') }}">{{ csrf_token_field() }}<button>go</button></form>
{% endblock %}"""


def bins_blueprint() -> Blueprint:
    admin = protect(Blueprint("bins_admin", __name__, url_prefix="/admin/bins"))

    @admin.route("")
    @require("stock.view")
    def bins():
        return render_template_string(PAGE)

    @admin.route("/recount", methods=["POST"])
    @require("stock.change")
    def recount():
        return "recounted"

    return admin


class Bins:
    """A plugin with its own admin screen (stock.view, menu position 42) and an order section."""

    def __init__(self):
        self.blueprint = bins_blueprint()

    @hookimpl
    def register_blueprints(self):
        return [self.blueprint]

    @hookimpl
    def admin_screens(self):
        return [AdminScreen(_l("Bins"), "bins_admin.bins", "stock.view", 42, lambda: [("Bins to recount", 3)]),
                AdminScreen(_l("Broken bins"), "bins_admin.bins", "stock.view", 43, lambda: 1 / 0)]

    @hookimpl
    def admin_order_panels(self, order):
        return [{"title": "Bins", "html": f"<p>order {order.number} in <b>A-1</b></p>", "permission": "stock.view",
                 "position": 5},
                {"title": "For everyone", "html": "<p>hello</p>"}]


class Broken:
    @hookimpl
    def admin_order_panels(self, order):
        raise RuntimeError("the bins table is gone")


@pytest.fixture
def bins_app(database, tmp_path, request):
    app = make_app(database, tmp_path, request, EXTRA_PLUGINS=[("bins", Bins()), ("broken", Broken())],
                   PLUGINS_DISABLED=["channel_webhook", "notify_email"])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def nav_labels(page: str) -> list[str]:
    return re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', re.search(r"<nav.*?</nav>", page, re.S).group(0))


def test_hook_admin_screens(bins_app):
    app = bins_app
    warehouse = log_in(app, make_staff(app, "warehouse"))
    page = warehouse.get("/admin/bins").get_data(as_text=True)
    assert "<h1>Low stock</h1>" in page  # the plugin's template extends admin/base.html (the admin's catalog)
    assert "Bins" in nav_labels(page)
    assert warehouse.post("/admin/bins/recount").get_data(as_text=True) == "recounted"
    dashboard = warehouse.get("/admin/")
    assert dashboard.status_code == 200  # the failing attention function is logged and left out
    assert '<a href="/admin/bins">Bins to recount: 3</a>' in dashboard.get_data(as_text=True)
    assert warehouse.post("/admin/bins/recount", csrf=False).status_code == 400  # CSRF like every admin form
    # the bundled screens of disabled plugins are neither in the menu nor mounted
    owner = log_in(app, make_staff(app, "owner"))
    labels = nav_labels(owner.get("/admin/").get_data(as_text=True))
    assert "Bins" in labels and "Accounting" in labels and "Webhooks" not in labels and "Notifications" not in labels
    assert labels.index("Bins") < labels.index("Accounting")  # position 42 < 70
    assert owner.get("/admin/webhooks").status_code == 404
    plugins = owner.get("/admin/plugins").get_data(as_text=True)
    row = re.search(r'<tr data-plugin="bins">(.*?)</tr>', plugins, re.S).group(1)
    assert 'href="/admin/bins"' in row and "<code>admin_screens</code>" in row
    # without the permission: 403 on the plugin's routes (the admin's error page), no menu entry
    service = log_in(app, make_staff(app, "customer_service"))
    refused = service.get("/admin/bins")
    assert refused.status_code == 403 and "Your role does not allow this" in refused.get_data(as_text=True)
    assert "Bins" not in nav_labels(service.get("/admin/").get_data(as_text=True))
    accounting = log_in(app, make_staff(app, "accounting"))
    assert accounting.get("/admin/bins").status_code == 200
    assert accounting.post("/admin/bins/recount").status_code == 403
    anonymous = app.test_client()
    for resp in (anonymous.get("/admin/bins"), anonymous.post("/admin/bins/recount")):
        assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_hook_admin_order_panels(bins_app):
    app = bins_app
    from conftest import ApiClient, new_key

    api = ApiClient(app.test_client(), new_key(app))
    product(api, "MUG")
    receive(api, "MUG", 2)
    order = place(api, [("MUG", 1)])

    def sections(role):
        client = log_in(app, make_staff(app, role))
        cookie = client.client.get_cookie("hookshop_session")
        with app.test_request_context("/admin/", headers={"Cookie": f"hookshop_session={cookie.value}"}):
            row = db.session.get(Order, order["id"])
            found = plugin_screens.order_panels(row)
            html = render_template("admin/_order_panels.html", order=row)
            db.session.remove()
        return found, html

    found, html = sections("warehouse")
    assert [(p["plugin"], p["title"]) for p in found] == [("bins", "Bins"), ("bins", "For everyone"),
                                                         ("broken", "broken")]
    assert f"<p>order {order['number']} in <b>A-1</b></p>" in html  # the plugin's HTML, as it rendered it
    assert found[2]["failed"] and "could not be shown" in found[2]["html"]  # a failing plugin: a note, no 500
    found, _ = sections("customer_service")  # no stock.view: the Bins section is left out
    assert [p["title"] for p in found] == ["For everyone", "broken"]


def bad_app(tmp_path, plugin):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "INSTANCE": str(tmp_path),
                       "EXTRA_PLUGINS": [("bad", plugin)]})


class Unprotected:
    """An admin blueprint without ``protect``: it would skip the login and the permission check."""

    @hookimpl
    def register_blueprints(self):
        admin = Blueprint("open_admin", __name__, url_prefix="/admin/open")
        admin.add_url_rule("", "index", lambda: "open")
        return [admin]


class Outside:
    @hookimpl
    def register_blueprints(self):
        return [protect(Blueprint("outside_admin", __name__, url_prefix="/bins"))]


class UnknownPermission(Bins):
    @hookimpl
    def admin_screens(self):
        return [AdminScreen("Bins", "bins_admin.bins", "bins.view", 42)]


class NotAView:
    @hookimpl
    def admin_screens(self):
        return [("Bins", "admin_ui.nowhere", "stock.view", 42)]


@pytest.mark.parametrize("plugin, detail", [
    (Unprotected(), "/admin/open"), (Outside(), "must be mounted under /admin/"),
    (UnknownPermission(), "unknown admin permission 'bins.view'"), (NotAView(), "admin_ui.nowhere")])
def test_start_up_refuses_admin_screens_that_skip_the_gate(tmp_path, plugin, detail):
    with pytest.raises(PluginError) as info:
        bad_app(tmp_path, plugin)
    assert detail in str(info.value)
