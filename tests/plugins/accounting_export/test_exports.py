"""Exports: CSV, beancount (zero errors in beancount's loader), ledger, Xero CSV; the CLI with its
progress bar; the streamed API; the demo shop; a refund after an export only adds entries."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from conftest import order_body, place
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.db import db, transaction, utcnow
from engine.plugins import registry

from .helpers import beancount_errors, check_books, export_text, walk


def _shop_with_history(api):
    a = place(api, [("MUG", 2), ("BOOK-TALE", 1)], coupon="WELCOME10")
    walk(api, a, "delivered")
    b = place(api, [("CAP", 1), ("MUG", 1)], email="bob@example.com")
    walk(api, b, "confirmed")
    assert api.post(f"/orders/{b['id']}/cancel", {"reason": "changed mind"}).status_code == 200
    body = order_body([("BOOK-TALE", 2)], email="chloe@example.fr")
    body["customer"]["name"] = 'Chloé "Quote" \\ Martin'  # quotes and a backslash in a payee
    c = api.post("/orders", body).get_json()
    walk(api, c, "shipped")
    assert api.post(f"/orders/{c['id']}/refunds", {"amount": 1234, "reason": "late; sorry"}).status_code == 200
    return [a, b, c]


def _sums(rows, key, amount) -> dict:
    totals: dict = defaultdict(Decimal)
    for row in rows:
        totals[key(row)] += amount(row)
    return totals


def test_every_format_balances_and_beancount_loads_cleanly(shop, app):
    _shop_with_history(shop)
    with app.app_context():
        counts = check_books()
        bean = export_text("beancount")
        assert beancount_errors(bean) == []
        assert bean.count(" balance ") >= 8  # the totals are asserted at the end, and hold
        assert "^order-" in bean and "#sale" in bean and "#cancellation" in bean

        rows = list(csv.DictReader(io.StringIO(export_text("csv"))))
        assert len(rows) == counts["postings"]
        assert len({r["entry_id"] for r in rows}) == counts["entries"]
        per_entry = _sums(rows, lambda r: (r["entry_id"], r["currency"]),
                          lambda r: Decimal(r["debit"] or 0) - Decimal(r["credit"] or 0))
        assert set(per_entry.values()) == {Decimal(0)}
        assert all(bool(r["debit"]) != bool(r["credit"]) for r in rows)

        ledger = export_text("ledger")
        blocks = [b for b in ledger.split("\n\n") if re.match(r"^\d{4}-\d\d-\d\d \*", b)]
        assert len(blocks) == counts["entries"]
        for block in blocks:
            amounts = re.findall(r"^    \S+  (-?\d+\.\d\d) EUR", block, flags=re.M)
            assert len(amounts) >= 2 and sum(Decimal(a) for a in amounts) == 0, block

        xero = list(csv.DictReader(io.StringIO(export_text("xero"))))
        assert len(xero) == counts["postings"]
        journals = _sums(xero, lambda r: (r["*Narration"], r["*Date"]), lambda r: Decimal(r["*Amount"]))
        assert len(journals) == counts["entries"] and set(journals.values()) == {Decimal(0)}
        codes = {r["*AccountCode"] for r in xero}
        assert {"610", "200", "820", "612"} <= codes and all(r["*TaxRate"] == "No VAT" for r in xero)


def test_a_date_range_exports_only_its_entries(shop, app):
    _shop_with_history(shop)
    today = datetime.now(UTC).date()
    with app.app_context():
        assert export_text("csv", since=today + timedelta(days=1)).count("\n") == 1  # the header only
        whole = export_text("beancount", since=today, until=today)
        assert beancount_errors(whole) == [] and whole.count(" * ") > 5
        assert " balance " not in whole  # a range that starts later has no opening balances to assert


def test_a_refund_after_an_export_only_adds_entries(shop, app):
    order = place(shop, [("MUG", 3)])
    walk(shop, order, "delivered")
    with app.app_context():
        first = export_text("beancount")
    assert shop.post(f"/orders/{order['id']}/refunds", {"amount": 1190, "reason": "one was broken"}).status_code == 200
    with app.app_context():
        second = export_text("beancount")

        def transactions(doc):
            return [b for b in doc.split("\n\n") if re.match(r"^\d{4}-\d\d-\d\d \* ", b)]

        old, new = transactions(first), transactions(second)
        assert old == new[:len(old)] and len(new) == len(old) + 1  # the exported entries did not change
        assert "#refund" in new[-1] and "Income:Refunds" in new[-1]
        assert beancount_errors(second) == []
        try:  # and nobody can change them afterwards
            with transaction():
                db.session.execute(text("UPDATE accounting_export_postings SET amount = 1"))
            raise AssertionError("the update went through")
        except DBAPIError as exc:
            db.session.rollback()
            assert "immutable" in str(exc.orig)
        assert export_text("beancount").split("\n\n")[:-1] == second.split("\n\n")[:-1]


def test_the_demo_shop_exports_to_beancount_without_errors(app):
    from engine.demo import load_demo
    from engine.jobs import drain, run_periodic_tasks

    with app.app_context():
        load_demo()
    assert drain(app)  # the demo's stage hooks (the journal's sales, shipments) ran on the delivery thread
    with app.app_context():
        run_periodic_tasks(utcnow())  # the opening stock gets posted too
        check_books()
        bean = export_text("beancount")
        assert beancount_errors(bean) == []
        assert bean.count("#stock_receipt") == 5 and bean.count("#sale") >= 4 and bean.count("#shipment") >= 3
        assert "Liabilities:VAT:19" in bean


def test_the_cli_exports_with_a_progress_bar(shop, app, tmp_path):
    _shop_with_history(shop)
    out = tmp_path / "books.beancount"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounting", "export", "--format", "beancount", "--since", "2026-01-01",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "exporting" in result.output and "postings written to" in result.output
    assert beancount_errors(out.read_text()) == []
    for fmt in ("csv", "ledger", "xero"):
        result = runner.invoke(args=["accounting", "export", "--format", fmt, "--output", str(tmp_path / fmt)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "csv").read_text().startswith("entry_id,date,kind")
    result = runner.invoke(args=["accounting", "export", "--format", "csv", "--output", "-", "--no-progress"])
    assert result.exit_code == 0 and result.output.startswith("entry_id,")
    bad = runner.invoke(args=["accounting", "export", "--format", "qif", "--output", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "unknown format 'qif'" in bad.output
    bad = runner.invoke(args=["accounting", "export", "--format", "csv", "--since", "2026-13-01", "--output", "-"])
    assert bad.exit_code == 2 and "not a date" in bad.output
    bad = runner.invoke(args=["accounting", "export", "--format", "csv", "--since", "2026-02-01",
                              "--until", "2026-01-01", "--output", "-"])
    assert bad.exit_code == 2


def test_the_api_streams_exports(shop, app):
    _shop_with_history(shop)
    resp = shop.get("/accounting/export?format=beancount")
    assert resp.status_code == 200 and resp.is_streamed
    assert beancount_errors(resp.get_data(as_text=True)) == []
    resp = shop.get(f"/accounting/export?format=csv&since={date.today().isoformat()}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'filename="journal.csv"' in resp.headers["Content-Disposition"]
    assert resp.get_data(as_text=True).startswith("entry_id,")  # consumed: the stream's contexts are popped now
    for query, field in (("format=qif", "format"), ("", "format"), ("format=csv&since=yesterday", "since"),
                         ("format=csv&since=2026-02-01&until=2026-01-01", "until"), ("format=csv&x=1", "x")):
        bad = shop.get(f"/accounting/export?{query}")
        assert bad.status_code == 422 and field in bad.get_json()["errors"], (query, bad.get_json())


def test_the_exporters_are_registered(app):
    with app.app_context():
        assert {"csv", "beancount", "ledger", "xero"} <= set(registry().exporters)


def test_three_and_zero_decimal_currencies_export_with_their_own_decimals(shop, app):
    """KWD has 3 decimals, JPY none (ISO 4217): the exports write each with its own, and beancount agrees."""
    from beancount import loader
    from beancount.core import data as bean_data
    from conftest import product, receive

    from plugins.accounting_export.models import Posting

    product(shop, "DATES-KW", price=1505, currency="kwd")  # 1.505 KWD
    product(shop, "TEA-JP", price=1200, currency="JPY")  # 1,200 yen
    receive(shop, "DATES-KW", 10)
    receive(shop, "TEA-JP", 10)
    kwd = place(shop, [("DATES-KW", 3)])
    walk(shop, kwd, "delivered")
    assert shop.post(f"/orders/{kwd['id']}/refunds", {"amount": 1001, "reason": "one box"}).status_code == 200
    jpy = place(shop, [("TEA-JP", 2)])
    walk(shop, jpy, "shipped")
    assert (kwd["totals"]["currency"], jpy["totals"]["currency"]) == ("KWD", "JPY")

    with app.app_context():
        check_books()
        bean = export_text("beancount")
        assert beancount_errors(bean) == []
        amounts = re.findall(r"^  \S+  (-?[\d.]+) (KWD|JPY)$", bean, flags=re.M)
        assert {c for _, c in amounts} == {"KWD", "JPY"}
        assert all(re.fullmatch(r"-?\d+\.\d{3}", a) for a, c in amounts if c == "KWD"), amounts
        assert all(re.fullmatch(r"-?\d+", a) for a, c in amounts if c == "JPY"), amounts
        assert "4.515 KWD" in bean and "2400 JPY" in bean  # the sales' receivables: 3 x 1.505, 2 x 1200

        # beancount reads back exactly the journal's minor units, scaled by the currency's exponent
        loaded, _errors, _options = loader.load_string(bean)
        read_back: dict = defaultdict(Decimal)
        for entry in loaded:
            if isinstance(entry, bean_data.Transaction):
                for posting in entry.postings:
                    read_back[posting.units.currency] += abs(posting.units.number)
        ours: dict = defaultdict(int)
        for amount, currency in db.session.execute(db.select(Posting.amount, Posting.currency)):
            ours[currency] += abs(amount)
        assert read_back["KWD"] == Decimal(ours["KWD"]).scaleb(-3)
        assert read_back["JPY"] == Decimal(ours["JPY"])

        rows = list(csv.DictReader(io.StringIO(export_text("csv"))))
        for row in rows:
            for value in (row["debit"], row["credit"]):
                if value and row["currency"] == "KWD":
                    assert re.fullmatch(r"\d+\.\d{3}", value), row
                if value and row["currency"] == "JPY":
                    assert re.fullmatch(r"\d+", value), row
        ledger = export_text("ledger")
        assert re.search(r"^    \S+  4\.515 KWD", ledger, flags=re.M) and re.search(r"  2400 JPY", ledger)
