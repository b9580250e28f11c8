"""notify_email: every message of an order's life, captured by a real SMTP server, in English and Turkish."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from notify_email_support import (
    SmtpServer,
    attachments,
    body,
    place,
    settings,
    spare_port,
    stocked_shop,
    walk_to_delivered,
)
from pypdf import PdfReader
from sqlalchemy import select, update

from engine import jobs, outbox
from engine.db import db, utcnow
from engine.retry_queue import TASKS
from plugins.notify_email.models import Message


@pytest.fixture
def smtp():
    server = SmtpServer(spare_port()).start()
    yield server
    server.stop()


@pytest.fixture
def app_config(smtp):
    return settings(smtp.port)


def _follow_up(app, days: int) -> int:
    with app.app_context():
        done = jobs.complete_due_followups(utcnow() + timedelta(days=days))
    jobs.drain(app)
    return done


def _life(api, app, smtp, address, **extra):
    stocked_shop(api)
    order = place(api, address, **extra)
    shipped = walk_to_delivered(api, order["id"])
    assert _follow_up(app, 8) == 1
    return order, shipped, smtp.inbox.to(address)


def test_every_message_of_an_orders_life_in_english(api, app, smtp):
    order, shipped, mails = _life(api, app, smtp, "ann@example.com", locale="en-GB")
    number = order["number"]
    assert [str(m["Subject"]) for m in mails] == [
        f"We received your order {number}", f"Your receipt for order {number}",
        f"Your order {number} is on its way", f"Did everything arrive? Your order {number}"]
    received, receipt, shipped_mail, followup = mails
    assert "How to pay: please transfer €25.00" in body(received) and f"quote your order number {number}" in body(received)
    assert "2 x Mug (MUG)" in body(receipt) and "Total: €25.00" in body(receipt)
    assert "VAT 19%: €3.99 on net €21.01" in body(receipt)  # accounting_export's VAT per rate
    pdf_name, pdf = next(iter(attachments(receipt).items()))
    assert pdf_name.startswith("receipt-") and pdf_name.endswith(".pdf")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert f"Order {number}" in text and "Receipt" in text
    assert pdf_name[len("receipt-"):-4] in body(receipt)  # the receipt number is quoted in the body
    tracking = shipped["shipments"][0]["tracking_number"]
    assert f"Tracking number: {tracking}" in body(shipped_mail) and "Estimated delivery:" in body(shipped_mail)
    assert f"packing-slip-{number}.pdf" in attachments(shipped_mail)
    assert f"https://shop.example.com/returns/request?order={number}" in body(followup)
    assert "help@example.com" in body(followup) and "How satisfied are you?" in body(followup)
    assert f"<a href=\"https://shop.example.com/feedback?order={number}&amp;rating=5\">" in body(followup, "html")


def test_every_message_of_an_orders_life_in_turkish(api, app, smtp):
    order, shipped, mails = _life(api, app, smtp, "ayse@example.com", locale="tr-TR")
    number = order["number"]
    assert [str(m["Subject"]) for m in mails] == [
        f"{number} numaralı siparişinizi aldık", f"{number} numaralı siparişinizin makbuzu",
        f"{number} numaralı siparişiniz yolda", f"Her şey ulaştı mı? {number} numaralı siparişiniz"]
    received, receipt, shipped_mail, followup = mails
    assert "Ödeme: lütfen €25,00 tutarını" in body(received)  # Turkish number format
    assert "Toplam: €25,00" in body(receipt) and attachments(receipt)
    assert "KDV %19: €21,01 net tutar üzerinden €3,99" in body(receipt)
    tracking = shipped["shipments"][0]["tracking_number"]
    assert f"Takip numarası: {tracking}" in body(shipped_mail)
    assert "Tahmini teslim tarihi:" in body(shipped_mail)
    assert f"/returns/request?order={number}" in body(followup) and "İade ve geri ödeme" in body(followup)
    with app.app_context():
        assert {m.language for m in db.session.execute(select(Message)).scalars()} == {"tr"}


def test_a_hook_delivered_twice_sends_one_message(api, app, smtp):
    stocked_shop(api)
    place(api)
    assert len(smtp.inbox.messages) == 1
    with app.app_context():  # the outbox delivers order_placed again, as after a crash
        for event in outbox.events(hook="order_placed"):
            db.session.execute(update(TASKS).where(TASKS.c.id == event.id).values(
                status="pending", leased_until=None, next_attempt_at=utcnow(),
                payload={"hook": event.hook, "payload": event.payload, "done": []}))
        db.session.commit()
        assert jobs.relay_due() == 1
    assert len(smtp.inbox.messages) == 1
    with app.app_context():
        assert db.session.execute(select(Message.status)).scalars().all() == ["sent"]


def test_a_gift_recipient_gets_the_shipping_news_without_prices(api, app, smtp):
    from conftest import SUPPORT_ADDRESS

    stocked_shop(api)
    address = {**SUPPORT_ADDRESS, "name": "Bob Friend", "email": "bob@example.com"}
    order = api.post("/orders", {"customer": {"email": "ann@example.com", "name": "Ann Example",
                                              "shipping_address": address},
                                 "lines": [{"sku": "MUG", "quantity": 2}], "gift": True}).get_json()
    walk_to_delivered(api, order["id"])
    _follow_up(app, 8)
    to_bob = smtp.inbox.to("bob@example.com")
    assert [str(m["Subject"]) for m in to_bob] == [f"Your order {order['number']} is on its way",
                                                  f"Did everything arrive? Your order {order['number']}"]
    for mail in to_bob:
        assert "€" not in body(mail) and "€" not in body(mail, "html")
    assert "A gift from Ann Example" in body(to_bob[0])
    assert any("€25.00" in body(m) for m in smtp.inbox.to("ann@example.com"))  # the buyer sees the prices


def test_an_order_without_email_sends_nothing_and_says_so(app, smtp, caplog):
    from conftest import SUPPORT_ADDRESS

    from engine.services import orders

    with app.app_context():  # a channel order without e-mail (a gift card: nothing to reserve)
        data = {"customer": {"email": None, "name": "Channel Buyer", "shipping_address": dict(SUPPORT_ADDRESS)},
                    "lines": [], "incomplete_ok": True, "channel": "shop", "external_id": "X-1", "currency": "EUR",
                    "non_stock_lines": [{"kind": "gift_card", "title": "Card", "quantity": 1, "unit_price": 500,
                                         "total": 500, "requires_shipping": False}]}
        with caplog.at_level("INFO", logger="hookshop.notify_email"):
            orders.place_order(data)
            jobs.drain(app)
    assert smtp.inbox.messages == []
    assert "has no e-mail address: no order_received message is sent" in caplog.text


def test_a_template_from_the_instance_folder_wins(api, app, smtp):
    from pathlib import Path

    folder = Path(app.instance_path) / "notify_email" / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "order_received.txt").write_text(
        '{% set subject = "Thanks from " ~ shop_name %}Our own words for order {{ order.number }}.\n')
    stocked_shop(api)
    order = place(api)
    mail = smtp.inbox.messages[0]
    assert str(mail["Subject"]) == "Thanks from Test Shop"
    assert body(mail).strip() == f"Our own words for order {order['number']}."
    assert "Thank you for your order" in body(mail, "html")  # the HTML is still the plugin's


def test_notifications_are_listed_by_order_and_status(api, app, smtp):
    stocked_shop(api)
    first, second = place(api), place(api, "bob@example.com")
    page = api.get(f"/notifications?order={second['id']}").get_json()
    assert [(m["to"], m["template"], m["status"], m["language"]) for m in page["items"]] == [
        ("bob@example.com", "order_received", "sent", "en")]
    assert page["items"][0]["event_key"].endswith(":order_received:bob@example.com")
    one = api.get("/notifications?status=sent&limit=1").get_json()
    assert one["items"][0]["order_id"] == second["id"] and one["next_cursor"]
    rest = api.get(f"/notifications?status=sent&limit=1&cursor={one['next_cursor']}").get_json()
    assert rest["items"][0]["order_id"] == first["id"] and rest["next_cursor"] is None
    assert api.get("/notifications?status=nope").status_code == 422


def test_return_and_refund_updates_in_turkish(api, app, smtp):
    stocked_shop(api)
    order = place(api, "ayse@example.com", locale="tr")
    walk_to_delivered(api, order["id"])
    resp = api.post(f"/orders/{order['id']}/returns", {"lines": [{"sku": "MUG", "quantity": 1}],
                                                       "reason": "kırık", "resolution": "refund"})
    assert resp.status_code == 201, resp.get_json()
    return_id = resp.get_json()["id"]
    assert api.post(f"/returns/{return_id}/receive", {}).get_json()["status"] == "resolved"
    number = order["number"]
    # a staff return is approved at once: requested, approved, received, refunded, one message each
    mails = smtp.inbox.to("ayse@example.com")[-4:]
    assert [str(m["Subject"]) for m in mails] == [
        f"{number} numaralı siparişinizin iadesi", f"{number} numaralı siparişinizin iadesi onaylandı",
        f"{number} numaralı siparişinizin iadesini teslim aldık", f"{number} numaralı siparişinizin para iadesi"]
    assert f"(iade {return_id})" in body(mails[0])
    assert "€12,50 tutarını ödeme yönteminize iade ettik" in body(mails[3])
