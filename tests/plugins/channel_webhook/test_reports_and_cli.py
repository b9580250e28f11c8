"""Sales by channel, reconciliation against a channel's export, the CLI, and the documented shapes."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

import marshmallow as ma
from conftest import place, product, receive
from sqlalchemy import update

from engine.db import db, utcnow
from engine.models import Order
from plugins.channel_webhook import api as schemas

from .support import as_body, post_channel, sample, shopify_headers, standard_headers

SHOPIFY_SECRET = "shpss_reconcile_secret_0001"


def _generic_secret(api, name="site"):
    resp = api.post("/channels", {"name": name, "format": "generic"})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["secret"]


def _channel_order(api, name, secret, external_id, sku="MUG", quantity=1, unit_price=1000):
    body = as_body({"external_id": external_id, "customer": {
        "email": "ann@example.com", "name": "Ann", "shipping_address": {
            "line1": "Sample Street 12", "city": "Berlin", "postal_code": "10115", "country": "DE"}},
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": unit_price}]})
    resp = post_channel(api.client, name, body, standard_headers(secret, body))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_sales_by_channel_per_day(api, app):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 50)
    secret = _generic_secret(api)
    first = _channel_order(api, "site", secret, "S-1", quantity=2)  # 2000
    _channel_order(api, "site", secret, "S-2")  # 1000
    cancelled = _channel_order(api, "site", secret, "S-3")
    assert api.post(f"/orders/{cancelled['id']}/cancel", {"reason": "test"}).status_code == 200
    place(api, [("MUG", 1)])  # the REST channel "api", 1290
    with app.app_context():  # one order of the site placed yesterday
        db.session.execute(update(Order).where(Order.id == first["id"])
                           .values(created_at=utcnow() - timedelta(days=1)))
        db.session.commit()
        db.session.remove()
    today, yesterday = utcnow().date(), utcnow().date() - timedelta(days=1)
    resp = api.get(f"/channels/sales?since={yesterday}&until={today}")
    assert resp.status_code == 200, resp.get_json()
    rows = {(r["date"], r["channel"]): r for r in resp.get_json()["items"]}
    assert set(rows) == {(str(yesterday), "site"), (str(today), "site"), (str(today), "api")}
    assert (rows[(str(yesterday), "site")]["orders"], rows[(str(yesterday), "site")]["revenue"]) == (1, 2000)
    site = rows[(str(today), "site")]
    assert (site["orders"], site["revenue"], site["cancelled"], site["currency"]) == (1, 1000, 1, "EUR")
    assert rows[(str(today), "api")]["revenue"] == 1290 == rows[(str(today), "api")]["net_revenue"]
    only_site = api.get(f"/channels/sales?since={today}&until={today}&channel=site").get_json()["items"]
    assert [(r["channel"], r["orders"]) for r in only_site] == [("site", 1)]
    assert api.get("/channels/sales").get_json()["items"]  # default: the last 30 days
    bad = api.get(f"/channels/sales?since={today}&until={yesterday}")
    assert bad.status_code == 422 and "until" in bad.get_json()["errors"]
    assert api.get("/channels/sales?since=yesterday").status_code == 422


def test_reconcile_lists_orders_the_channel_has_and_we_do_not(api, app, tmp_path):
    product(api, "IPOD2008GREEN", price=19900, currency="USD")
    product(api, "CASE-BLUE", price=9950, currency="USD")
    receive(api, "IPOD2008GREEN", 1)
    receive(api, "CASE-BLUE", 10)
    assert api.post("/channels", {"name": "shop-us", "format": "shopify", "secret": SHOPIFY_SECRET,
                                  "sku_map": {"457924702": "CASE-BLUE"}}).status_code == 201
    received = sample("shopify_orders_create.json")
    body = as_body(received)
    assert post_channel(api.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 201
    refused = {**received, "id": 820982911946154600, "name": "#1235"}  # no iPod left: refused, recorded
    body = as_body(refused)
    assert post_channel(api.client, "shop-us", body, shopify_headers(SHOPIFY_SECRET, body)).status_code == 409

    export = tmp_path / "orders_export.csv"
    with export.open("w", newline="") as fh:  # Shopify's export: one row per line item, order fields once
        writer = csv.writer(fh)
        writer.writerow(["Name", "Email", "Financial Status", "Currency", "Total", "Created at", "Lineitem quantity",
                         "Lineitem name", "Lineitem sku", "Id"])
        for name, order_id, total in (("#1234", "820982911946154508", "427.10"),
                                      ("#1235", "820982911946154600", "427.10"),
                                      ("#1236", "820982911946154777", "19.90")):
            writer.writerow([name, "jon@example.com", "paid", "USD", total, "2024-05-14 10:21:03 -0400", "1",
                             "IPod Nano - 8gb", "IPOD2008GREEN", order_id])
            writer.writerow([name, "", "", "", "", "", "2", "Silicone case", "", ""])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["channels", "reconcile", "shop-us", str(export)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 orders in the export, 1 here, 2 missing"
    assert lines[1].startswith("missing 820982911946154600  number=#1235") and "insufficient_stock" in lines[1]
    assert lines[2].startswith("missing 820982911946154777  number=#1236") and "last refusal" not in lines[2]

    export_json = tmp_path / "orders.json"  # WooCommerce's REST list of orders
    export_json.write_text(json.dumps({"orders": [{"id": 820982911946154508, "status": "processing"},
                                                  {"id": 99, "status": "processing", "total": "12.00"}]}))
    result = runner.invoke(args=["channels", "reconcile", "shop-us", str(export_json), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["exported"], data["present"]) == (2, 1)
    assert data["missing"] == [{"external_id": "99", "total": "12.00", "status": "processing", "last_refusal": None}]

    no_ids = tmp_path / "no_ids.csv"
    no_ids.write_text("Name,Total\n#1,2.00\n")
    result = runner.invoke(args=["channels", "reconcile", "shop-us", str(no_ids)])
    assert result.exit_code != 0 and "no order id column" in result.output
    result = runner.invoke(args=["channels", "reconcile", "shop-us", str(no_ids), "--id-column", "Name"])
    assert result.exit_code == 0 and "missing #1" in result.output
    assert runner.invoke(args=["channels", "reconcile", "nowhere", str(export)]).exit_code != 0


def test_cli_channels_and_webhooks(api, app, receiver):
    runner = app.test_cli_runner()
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    result = runner.invoke(args=["channels", "add", "site", "--format", "generic", "--map", "MUG-OLD=MUG"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    result = runner.invoke(args=["channels", "add", "shop", "--format", "shopify"])
    assert result.exit_code != 0 and "secret" in result.output
    result = runner.invoke(args=["channels", "list"])
    assert "site" in result.output and "sku map 1 entries" in result.output
    _channel_order(api, "site", secret, "C-1", sku="MUG-OLD")

    result = runner.invoke(args=["webhooks", "subscribe", receiver.url, "--event", "order_paid"])
    assert result.exit_code == 0, result.output
    sub_secret = result.output.strip().splitlines()[-1]
    order = place(api, [("MUG", 1)])
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200  # the receiver is down
    result = runner.invoke(args=["webhooks", "list"])
    assert receiver.url in result.output and "pending 1" in result.output
    result = runner.invoke(args=["webhooks", "deliveries"])
    assert "order_paid" in result.output and "pending" in result.output
    delivery_id = result.output.split()[0]
    assert runner.invoke(args=["webhooks", "redeliver", delivery_id]).exit_code == 1  # still down
    receiver.start()
    result = runner.invoke(args=["webhooks", "redeliver", delivery_id])
    assert result.exit_code == 0 and "delivered (HTTP 200" in result.output
    [entry] = receiver.received
    from standardwebhooks import Webhook

    assert Webhook(sub_secret).verify(entry["body"], entry["headers"])["data"]["order_id"] == order["id"]
    assert runner.invoke(args=["webhooks", "subscribe", "http://10.0.0.7/x", "--event", "*"]).exit_code != 0


def _same_keys(schema: ma.Schema, data):
    schema.load(data)  # unknown=RAISE: an undocumented key fails here
    optional = {"secret", "body", "attempt_log"}
    assert set(schema.fields) - set(data) <= optional, set(schema.fields) - set(data)


def test_answers_match_the_documented_schemas(api, app, receiver):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 5)
    secret = _generic_secret(api)
    created = api.post("/channels", {"name": "shop", "format": "shopify", "secret": SHOPIFY_SECRET}).get_json()
    _same_keys(schemas.ChannelOut(), created)
    _same_keys(schemas.ChannelOut(), api.get("/channels/site").get_json())
    answer = _channel_order(api, "site", secret, "D-1")
    _same_keys(schemas.ChannelOrderOut(), answer)
    page = api.get("/channels/site/deliveries").get_json()
    schemas.InboundPage().load(page)
    _same_keys(schemas.InboundOut(), page["items"][0])
    receiver.start()
    sub = api.post("/webhooks/subscriptions", {"url": receiver.url, "events": ["order_paid"]}).get_json()
    _same_keys(schemas.SubscriptionOut(), sub)
    assert api.post(f"/orders/{answer['id']}/pay").status_code == 200
    listed = api.get("/webhooks/deliveries").get_json()
    schemas.DeliveryPage().load(listed)
    _same_keys(schemas.DeliveryOut(), listed["items"][0])
    detail = api.get(f"/webhooks/deliveries/{listed['items'][0]['id']}").get_json()
    _same_keys(schemas.DeliveryDetail(), detail)
    assert detail["body"]["type"] == "order_paid" and detail["attempt_log"][0]["status_code"] == 200
    schemas.SalesOut().load(api.get("/channels/sales").get_json())
