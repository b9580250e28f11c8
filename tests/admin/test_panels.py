"""The admin screens whose data belongs to plugins: /admin/plugins (the core's), and the bundled plugins'
/admin/webhooks, /admin/notifications, /admin/accounting and their order-page sections, mounted through
the hooks admin_screens and admin_order_panels behind the admin's gate."""

from __future__ import annotations

import json
import re
import threading

import pytest
from conftest import place, product, receive
from flask import render_template
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine.admin import plugin_screens
from engine.db import db
from engine.models import Order

LOOPBACK = "127.0.0.0/8,::1/128"


@pytest.fixture
def app_config():
    """Outbound webhooks may reach the test's loopback receiver."""
    return {"CHANNEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": LOOPBACK, "CHANNEL_WEBHOOK_TIMEOUT": 5}


class Receiver:
    """A webhook receiver on a loopback port answering ``status`` (changeable)."""

    def __init__(self):
        self.status, self.received = 200, []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _app(self, environ, start_response):
        self.received.append(Request(environ).get_data())
        return Response(json.dumps({}), status=self.status, mimetype="application/json")(environ, start_response)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.stop()


def scans(order: dict) -> list[str]:
    return [line["sku"] for line in order["lines"] for _ in range(line["quantity"])]


def confirmed_order(api) -> dict:
    product(api, "MUG", price=1290, unit_cost=400)
    receive(api, "MUG", 5)
    order = place(api, [("MUG", 2)])
    for step, body in (("pay", {}), ("pick", {"scans": scans(order)}), ("confirm", {})):
        resp = api.post(f"/orders/{order['id']}/{step}", body)
        assert resp.status_code == 200, (step, resp.get_json())
    return resp.get_json()


def text_of(resp) -> str:
    return resp.get_data(as_text=True)


def rows(page: str, table: str) -> list[str]:
    """The rows of a table of the page (a row may hold a table of its own: the rows are split at their
    ``data-`` attribute)."""
    body = re.search(rf'<table id="{table}".*?<tbody>(.*)', page, re.S)
    if not body:
        return []
    table = re.split(r"<h2>|</main>|<table id=", body.group(1))[0]
    parts = re.split(r"(?=<tr data-)", table)
    return [part for part in parts if part.startswith("<tr data-")] or re.findall(
        r"<tr\b.*?</tr>", table.split("</tbody>")[0], re.S)


# ----------------------------------------------------------------- the core's plugins screen


def test_the_plugins_screen_lists_every_discovered_plugin_as_the_api_does(app, api, staff_client):
    owner = staff_client("owner")
    page = text_of(owner.get("/admin/plugins"))
    listed = api.get("/plugins").get_json()
    for plugin in listed:  # the same facts as GET /api/v1/plugins
        row = re.search(rf'<tr data-plugin="{plugin["name"]}">(.*?)</tr>', page, re.S).group(1)
        assert plugin["module"] in row
        assert ("Enabled" in row) is plugin["enabled"]
        for hook in plugin["hooks"]:
            assert f"<code>{hook}</code>" in row
    names = {p["name"] for p in listed}
    assert {"payments_manual", "accounting_export", "channel_webhook", "notify_email", "carrier_generic",
            "payments_stripe"} <= names
    stripe = re.search(r'<tr data-plugin="payments_stripe">(.*?)</tr>', page, re.S).group(1)
    assert "Disabled" in stripe and "STRIPE_SECRET_KEY" in stripe  # and why
    webhook = re.search(r'<tr data-plugin="channel_webhook">(.*?)</tr>', page, re.S).group(1)
    assert 'href="/admin/webhooks"' in webhook and "<code>admin_screens</code>" in webhook
    # the nav: the plugins' screens in their menu positions, between the core's own
    nav = re.search(r"<nav.*?</nav>", page, re.S).group(0)
    labels = re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)
    assert labels.index("Accounting") < labels.index("Notifications") < labels.index("Webhooks") \
        < labels.index("Plugins") < labels.index("Staff")


def test_menus_show_each_role_its_plugin_screens(app, staff_client):
    expected = {"owner": {"Accounting", "Notifications", "Webhooks", "Plugins"},
                "accounting": {"Accounting"}, "customer_service": {"Notifications"}, "warehouse": set()}
    for role, screens in expected.items():
        page = text_of(staff_client(role).get("/admin/"))
        nav = re.search(r"<nav.*?</nav>", page, re.S).group(0)
        shown = set(re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)) & {"Accounting", "Notifications",
                                                                              "Webhooks", "Plugins"}
        assert shown == screens, role


# ----------------------------------------------------------------- webhooks (channel_webhook)


def test_webhooks_screen_lists_subscriptions_and_deliveries_and_redelivers(app, api, staff_client, receiver):
    sub = api.post("/webhooks/subscriptions", {"url": receiver.url, "events": ["order_placed"],
                                               "description": "ERP"}).get_json()
    receiver.status = 500
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    place(api, [("MUG", 1)])
    [delivery] = api.get("/webhooks/deliveries").get_json()["items"]
    assert delivery["status"] == "pending" and delivery["attempts"] == 1

    owner = staff_client("owner")
    page = text_of(owner.get("/admin/webhooks"))
    [sub_row] = rows(page, "subscriptions")
    assert receiver.url in sub_row and "ERP" in sub_row and "order_placed" in sub_row and "Active" in sub_row
    [row] = rows(page, "deliveries")
    assert f'data-delivery="{delivery["id"]}"' in row and "order_placed" in row and "HTTP 500" in row
    assert "Redeliver" in row

    # redeliver: a POST with the session's CSRF token; without it nothing is sent
    url = f"/admin/webhooks/deliveries/{delivery['id']}/redeliver"
    assert owner.post(url, csrf=False).status_code == 400
    assert len(receiver.received) == 1
    receiver.status = 200
    resp = owner.post(url, {"back": "/admin/webhooks?status=delivered"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/webhooks?status=delivered")
    assert len(receiver.received) == 2
    page = text_of(owner.get(resp.headers["Location"]))
    assert "redelivered: the receiver answered 200" in page
    [row] = rows(page, "deliveries")
    assert 'data-status="delivered"' in row
    detail = text_of(owner.get(f"/admin/webhooks/deliveries/{delivery['id']}"))
    attempts = rows(detail, "attempts")
    assert len(attempts) == 2 and "HTTP 500" in attempts[0] and "HTTP 200" in attempts[1] and "manual" in attempts[1]
    assert api.get(f"/webhooks/deliveries/{delivery['id']}").get_json()["attempts"] == 2

    # disable the subscription: a redelivery is refused with a visible 409, nothing is sent
    resp = owner.post(f"/admin/webhooks/subscriptions/{sub['id']}/active", {"active": "0"})
    assert resp.status_code == 303
    resp = owner.post(url)
    assert resp.status_code == 409 and "enable it first" in text_of(resp)
    assert len(receiver.received) == 2
    assert owner.post("/admin/webhooks/deliveries/999999/redeliver").status_code == 404
    resp = owner.post(f"/admin/webhooks/subscriptions/{sub['id']}/active", {"active": "1"})
    assert api.get(f"/webhooks/subscriptions/{sub['id']}").get_json()["status"] == "active"


def test_plugin_admin_routes_refuse_roles_without_permission_and_anonymous_users(app, api, staff_client):
    for role in ("accounting", "warehouse", "customer_service"):
        client = staff_client(role)
        assert client.get("/admin/webhooks").status_code == 403
        assert client.post("/admin/webhooks/deliveries/1/redeliver").status_code == 403
        assert client.get("/admin/plugins").status_code == 403
    assert staff_client("warehouse").get("/admin/notifications").status_code == 403
    assert staff_client("customer_service").get("/admin/accounting").status_code == 403
    assert staff_client("accounting").get("/admin/accounting").status_code == 200
    refused = staff_client("warehouse").get("/admin/accounting")
    assert "Your role does not allow this" in text_of(refused)  # the admin's own error page
    anonymous = app.test_client()
    for path in ("/admin/webhooks", "/admin/notifications", "/admin/accounting", "/admin/plugins"):
        resp = anonymous.get(path)
        assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"], path
    resp = anonymous.post("/admin/webhooks/deliveries/1/redeliver")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]
    resp = anonymous.get("/admin/webhooks", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and "/admin/login" in resp.headers["HX-Redirect"]
    # the admin's security headers on a plugin's screen too
    headers = staff_client("owner").get("/admin/webhooks").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"


def test_the_dashboard_counts_what_the_plugins_gave_up(app, api, staff_client, receiver):
    receiver.status = 410  # Gone: the delivery fails for good (and the subscription is disabled)
    api.post("/webhooks/subscriptions", {"url": receiver.url, "events": ["*"]})
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    place(api, [("MUG", 1)])
    page = text_of(staff_client("owner").get("/admin/"))
    card = re.search(r'data-attention="channel_webhook_admin.webhooks"><a href="/admin/webhooks">([^<]+)</a>', page)
    assert card.group(1) == "Webhook deliveries given up: 1"
    assert 'data-attention="notify_email_admin.notifications"' in page  # "E-mails given up: 0"
    service = text_of(staff_client("customer_service", locale="tr").get("/admin/"))
    assert "Vazgeçilen e-postalar: 0" in service and "channel_webhook_admin" not in service  # owners only
    assert "data-attention" not in text_of(staff_client("warehouse").get("/admin/"))


# ----------------------------------------------------------------- notifications (notify_email)


def test_notifications_log_lists_a_sent_message(app, api, staff_client):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    order = place(api, [("MUG", 1)], email="buyer@example.com")
    messages = api.get(f"/notifications?order={order['id']}").get_json()["items"]
    assert [m["status"] for m in messages] == ["sent"]

    client = staff_client("customer_service")
    page = text_of(client.get("/admin/notifications"))
    [row] = rows(page, "notifications")
    assert "b***@example.com" in row and "buyer@example.com" not in row  # masked
    assert "Order received" in row and ">en<" in row and "Sent" in row and order["number"] in row
    assert rows(text_of(client.get(f"/admin/notifications?order={order['number']}")), "notifications")
    assert rows(text_of(client.get("/admin/notifications?status=dead")), "notifications") == []
    page = text_of(client.get("/admin/notifications?order=NOPE"))
    assert "No order with the number NOPE" in page

    tr = staff_client("customer_service", locale="tr")
    page = text_of(tr.get("/admin/notifications"))
    assert "Bildirimler" in page and "Sipariş alındı" in page and "Gönderildi" in page and "Alıcı" in page


# ----------------------------------------------------------------- accounting (accounting_export)


def test_accounting_screen_shows_the_journal_of_an_order_and_its_exports(app, api, staff_client):
    order = confirmed_order(api)
    entries = api.get(f"/accounting/entries?order={order['id']}").get_json()["items"]
    assert {e["kind"] for e in entries} >= {"payment", "sale"}
    receipt = api.get(f"/accounting/orders/{order['id']}/receipt").get_json()

    client = staff_client("accounting")
    page = text_of(client.get("/admin/accounting"))
    shown = rows(page, "journal")
    order_rows = [r for r in shown if order["number"] in r]
    assert {int(re.search(r'data-entry="(\d+)"', r).group(1)) for r in order_rows} >= {e["id"] for e in entries}
    sale = next(r for r in order_rows if ">Sale<" in r)
    assert "€25.80" in sale  # the sale's gross, debit
    assert receipt["number"] in page
    today = entries[0]["date"]
    assert rows(text_of(client.get(f"/admin/accounting?since={today}&until={today}")), "journal")
    assert rows(text_of(client.get("/admin/accounting?until=2000-01-01")), "journal") == []
    bad = client.get("/admin/accounting?since=yesterday")
    assert bad.status_code == 422 and "is not a date" in text_of(bad)

    export = client.get(f"/admin/accounting/export?format=csv&since={today}")
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    assert order["number"] in export.get_data(as_text=True)
    assert 'href="/admin/accounting/export?format=beancount' in page
    pdf = client.get(f"/admin/accounting/receipts/{receipt['id']}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get("/admin/accounting/export?format=nope").status_code == 422

    tr = text_of(staff_client("accounting", locale="tr").get("/admin/accounting"))
    assert "Yevmiye kayıtları" in tr and "Satış" in tr and "Borç" in tr and "Alacak" in tr


# ----------------------------------------------------------------- order panels


def test_order_panels_of_the_bundled_plugins_per_role(app, api, staff_client):
    order = confirmed_order(api)
    clients = {role: staff_client(role) for role in ("owner", "accounting", "customer_service", "warehouse")}
    owner = _render_panels(app, clients["owner"], order["id"])
    assert [p["title"] for p in owner] == ["Journal entries", "Notifications sent"]
    journal, notifications = owner
    assert journal["plugin"] == "accounting_export" and "€25.80" in journal["html"]
    assert notifications["plugin"] == "notify_email" and "Order received" in notifications["html"]
    assert "Receipt" in notifications["html"]  # the confirmation's receipt e-mail
    assert [p["title"] for p in _render_panels(app, clients["accounting"], order["id"])] == ["Journal entries"]
    assert [p["title"] for p in _render_panels(app, clients["customer_service"], order["id"])] == [
        "Notifications sent"]
    assert _render_panels(app, clients["warehouse"], order["id"]) == []


def _render_panels(app, client, order_id: int) -> list[dict]:
    """The order sections as the logged-in user of ``client`` gets them (the template global and the partial
    admin/_order_panels.html), read in a request carrying that user's session cookie."""
    cookie = client.client.get_cookie("hookshop_session")
    with app.test_request_context("/admin/", headers={"Cookie": f"hookshop_session={cookie.value}"}):
        order = db.session.get(Order, order_id)
        panels = plugin_screens.order_panels(order)
        html = render_template("admin/_order_panels.html", order=order)
        assert html.count('class="card plugin-panel"') == len(panels)
        db.session.remove()
    return panels
