"""Receipts: a gap-free number per year (also under 32 concurrent confirmations), the data for the
customer's e-mail, and the PDF."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

import pytest
from conftest import ApiClient, place
from sqlalchemy import func, select

from engine.db import db, transaction
from plugins.accounting_export import receipts
from plugins.accounting_export.models import JournalEntry, Receipt

from .conftest import TAX
from .helpers import walk


def test_a_confirmed_order_gets_a_numbered_receipt(shop, app):
    order = place(shop, [("MUG", 2), ("BOOK-TALE", 1)], coupon="WELCOME10")
    assert shop.get(f"/accounting/orders/{order['id']}/receipt").status_code == 404  # not confirmed yet
    walk(shop, order, "confirmed")
    resp = shop.get(f"/accounting/orders/{order['id']}/receipt")
    assert resp.status_code == 200
    receipt = resp.get_json()
    year = datetime.now(UTC).year
    assert receipt["number"] == f"{year}-000001" and receipt["year"] == year and receipt["total"] == 3942
    data = receipt["data"]
    assert [(line["sku"], line["quantity"], line["total"], line["tax_rate"]) for line in data["lines"]] == [
        ("MUG", 2, 2380, "19"), ("BOOK-TALE", 1, 2000, "7")]
    assert data["tax"] == [{"rate": "19", "net": 1800, "tax": 342, "gross": 2142},
                           {"rate": "7", "net": 1682, "tax": 118, "gross": 1800}]
    assert data["totals"] == {"subtotal": 4380, "discount": 438, "shipping": 0, "net": 3482, "tax": 460,
                              "total": 3942}
    assert data["payment"]["paid"] == 3942 and data["payment"]["due"] == 0
    assert data["payment"]["payments"][0]["provider"] == "manual"
    assert data["customer"]["email"] == "ann@example.com" and data["order"]["number"] == order["number"]
    assert shop.get(f"/accounting/receipts/{receipt['id']}").get_json() == receipt
    listed = shop.get(f"/accounting/receipts?order={order['id']}").get_json()
    assert [r["id"] for r in listed["items"]] == [receipt["id"]] and listed["next_cursor"] is None

    pdf = shop.get(receipt["pdf_url"].removeprefix("/api/v1"))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    from pypdf import PdfReader

    content = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    for expected in (receipt["number"], "39.42 EUR", "Mug", "3.42", "1.18", "Discount"):
        assert expected in content, (expected, content)
    assert shop.get("/accounting/receipts/999/receipt.pdf").status_code == 404
    assert shop.get("/accounting/receipts/999").get_json()["code"] == "not_found"


def test_numbers_follow_each_other_and_restart_every_year(shop, app):
    ids = [place(shop, [("CAP", 1)])["id"] for _ in range(3)]
    for oid in ids:
        walk(shop, oid, "confirmed")
    year = datetime.now(UTC).year
    numbers = [shop.get(f"/accounting/orders/{oid}/receipt").get_json()["number"] for oid in ids]
    assert numbers == [f"{year}-{n:06d}" for n in (1, 2, 3)]
    with app.app_context():
        with transaction():
            assert receipts.next_number(year + 1) == 1  # a new year starts at 1
        try:  # a confirmation that fails after taking a number gives it back (same transaction)
            with transaction():
                assert receipts.next_number(year) == 4
                raise RuntimeError("the sale could not be booked")
        except RuntimeError:
            pass
        with transaction():
            assert receipts.next_number(year) == 4


@pytest.fixture
def app_config():
    # every thread needs its own connection at once (SQLite keeps its own connect_args)
    return {**TAX, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 40, "max_overflow": 10, "pool_timeout": 60}}


def test_receipt_numbers_are_gap_free_under_32_concurrent_confirmations(shop, app):
    """32 orders confirmed at once, each request in its own thread (its own app context, session and
    connection): the stage hook numbers the receipts inline, racing for the year's counter row."""
    orders = [place(shop, [("MUG", 1)], email=f"c{i}@example.com") for i in range(32)]
    for order in orders:
        walk(shop, order, "picked")
    barrier = threading.Barrier(len(orders))
    answers: dict[int, int] = {}
    failures: list = []

    def confirm(order_id):
        client = ApiClient(app.test_client(), shop.key)
        try:
            barrier.wait(timeout=60)
            answers[order_id] = client.post(f"/orders/{order_id}/confirm").status_code
        except BaseException as exc:  # reported below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=confirm, args=(o["id"],), daemon=True) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures and set(answers.values()) == {200}, (failures, answers)
    with app.app_context():
        rows = db.session.execute(select(Receipt.order_id, Receipt.seq, Receipt.number)).all()
        assert sorted(seq for _, seq, _ in rows) == list(range(1, 33))  # no gap, no repeat
        assert sorted(order_id for order_id, _, _ in rows) == sorted(o["id"] for o in orders)
        assert len({number for _, _, number in rows}) == 32
        sales = db.session.execute(select(func.count()).select_from(JournalEntry)
                                   .where(JournalEntry.kind == "sale")).scalar_one()
        assert sales == 32
