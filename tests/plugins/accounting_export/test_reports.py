"""Reports through the API and the CLI: trial balance, sales by channel and month, tax per rate,
inventory valuation against the inventory account; the chart and the entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import place

from engine.db import utcnow
from engine.jobs import run_periodic_tasks

from .helpers import walk


def _history(api):
    a = place(api, [("MUG", 2), ("BOOK-TALE", 1)], coupon="WELCOME10", channel="shop")
    walk(api, a, "delivered")
    b = place(api, [("CAP", 2)], channel="market", external_id="m-1")
    walk(api, b, "shipped")
    assert api.post(f"/orders/{b['id']}/refunds", {"amount": 1500}).status_code == 200
    c = place(api, [("MUG", 1)], channel="market", external_id="m-2")
    walk(api, c, "confirmed")
    assert api.post(f"/orders/{c['id']}/cancel", {}).status_code == 200
    return a, b, c


def test_trial_balance_sums_to_zero(shop, app):
    _history(shop)
    report = shop.get("/accounting/reports/trial-balance").get_json()
    assert report["balanced"] and [t["balance"] for t in report["totals"]] == [0]
    assert report["totals"][0]["debit"] == report["totals"][0]["credit"] > 0
    accounts = {r["account"]: r for r in report["accounts"]}
    assert accounts["Assets:Clearing:Manual"]["balance"] == 3942 + 3000 - 1500
    assert accounts["Income:Refunds"]["balance"] > 0 and accounts["Liabilities:VAT:7"]["balance"] < 0
    assert all(r["debit"] - r["credit"] == r["balance"] for r in report["accounts"])
    assert shop.get("/accounting/reports/trial-balance?until=2000-01-01").get_json()["accounts"] == []
    text = app.test_cli_runner().invoke(args=["accounting", "report", "trial-balance"])
    assert text.exit_code == 0 and "Assets:Clearing:Manual" in text.output and text.output.strip().endswith("balanced")


def test_sales_by_channel_and_month(shop, app):
    _history(shop)
    month = datetime.now(UTC).strftime("%Y-%m")
    report = shop.get(f"/accounting/reports/sales?year={datetime.now(UTC).year}").get_json()
    rows = {r["channel"]: r for r in report["rows"]}
    assert set(rows) == {"shop", "market"} and {r["month"] for r in report["rows"]} == {month}
    shop_row = rows["shop"]
    assert shop_row == {"channel": "shop", "month": month, "currency": "EUR", "sales": 3869, "shipping": 0,
                        "discounts": 387, "refunds": 0, "net_revenue": 3482, "tax": 460, "orders": 1,
                        "gross": 3942}
    market = rows["market"]  # 2 caps sold, 1500 refunded; the mug sold and cancelled nets to zero
    assert market["orders"] == 2 and market["gross"] == 3000 - 1500
    assert market["refunds"] > 0 and market["net_revenue"] + market["tax"] == market["gross"]
    cli = app.test_cli_runner().invoke(args=["accounting", "report", "sales", "--json"])
    assert cli.exit_code == 0 and json.loads(cli.output)["rows"] == report["rows"]


def test_tax_summary_per_rate(shop, app):
    _history(shop)
    year = datetime.now(UTC).year
    report = shop.get(f"/accounting/reports/tax?year={year}").get_json()
    rates = {r["rate"]: r for r in report["rates"]}
    assert set(rates) == {"19", "7"}
    assert rates["7"] == {"currency": "EUR", "rate": "7", "net": 1682, "tax": 118, "gross": 1800}
    nineteen = rates["19"]  # order a's 2142 gross, the caps' 3000 less the 1500 credited
    assert nineteen["gross"] == 2142 + 3000 - 1500 and nineteen["net"] + nineteen["tax"] == nineteen["gross"]
    assert report["totals"] == [{"currency": "EUR", "net": 1682 + nineteen["net"], "tax": 118 + nineteen["tax"],
                                 "gross": 1800 + nineteen["gross"]}]
    assert shop.get(f"/accounting/reports/tax?year={year - 1}").get_json()["rates"] == []
    cli = app.test_cli_runner().invoke(args=["accounting", "report", "tax", "--year", str(year)])
    assert cli.exit_code == 0 and "19 %" in cli.output and "TOTAL" in cli.output


def test_inventory_is_reconciled_with_the_inventory_account(shop, app):
    _history(shop)
    report = shop.get("/accounting/reports/inventory").get_json()
    assert not report["reconciled"] and report["unposted_stock_movements"] == 3  # receipts wait for the sweeper
    with app.app_context():
        run_periodic_tasks(utcnow())
    report = shop.get("/accounting/reports/inventory").get_json()
    assert report["reconciled"] and report["unposted_stock_movements"] == 0
    products = {p["sku"]: p for p in report["products"]}
    assert products["MUG"]["on_hand"] == 48 and products["MUG"]["valuation"] == 48 * 400  # the cancelled one stayed
    assert products["MUG"]["account_value"] == 48 * 400 and products["MUG"]["account_quantity"] == 48
    assert products["CAP"]["on_hand"] == 48 and products["CAP"]["difference"] == 0
    total = report["totals"][0]
    assert total["valuation"] == total["account"] == total["account_balance"] == 48 * 400 + 49 * 900 + 48 * 600
    cli = app.test_cli_runner().invoke(args=["accounting", "report", "inventory"])
    assert cli.exit_code == 0 and cli.output.strip().endswith("reconciled")


def test_chart_entries_and_bad_queries(shop, app):
    a, _b, _c = _history(shop)
    chart = shop.get("/accounting/accounts").get_json()
    assert {"role": "vat", "account": "Liabilities:VAT:{rate}"} in chart["accounts"]
    assert chart["tax"] == {"default_rate": "19", "shipping_rate": "19",
                            "overrides": [{"pattern": "GIFT-CARD", "rate": "0"}, {"pattern": "BOOK-*", "rate": "7"}]}
    page = shop.get(f"/accounting/entries?order={a['id']}").get_json()
    assert [e["kind"] for e in page["items"]] == ["shipment", "sale", "payment"]  # newest first
    sale = page["items"][1]
    assert sum(p["amount"] for p in sale["postings"]) == 0 and sale["sync"]["status"] == "pending"
    assert shop.get(f"/accounting/entries/{sale['id']}").get_json() == sale
    first = shop.get("/accounting/entries?limit=2").get_json()
    second = shop.get(f"/accounting/entries?limit=2&cursor={first['next_cursor']}").get_json()
    assert len(first["items"]) == 2 and second["items"][0]["id"] < first["items"][-1]["id"]
    assert shop.get("/accounting/entries?kind=refund").get_json()["items"][0]["kind"] == "refund"
    assert shop.get("/accounting/entries/99999").status_code == 404
    for path in ("/accounting/entries?limit=0", "/accounting/entries?kind=gift", "/accounting/reports/sales?year=x",
                 "/accounting/reports/trial-balance?since=2026-05-01&until=2026-04-01", "/accounting/entries?foo=1"):
        resp = shop.get(path)
        assert resp.status_code == 422 and resp.get_json()["code"] == "validation_error", path
    cli = app.test_cli_runner().invoke(args=["accounting", "accounts"])
    assert cli.exit_code == 0 and "Assets:Receivables:Customers" in cli.output and "BOOK-* 7 %" in cli.output
