"""notify_email's delivery: retries while the SMTP server is down, the follow-up's timing, one send per
message however many workers, the warehouse's low-stock alert, and the ``order_documents`` hook."""

from __future__ import annotations

import threading
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
from sqlalchemy import select

from engine import hookimpl, jobs
from engine.db import db, utcnow
from plugins.notify_email import sending
from plugins.notify_email.models import Message


@pytest.fixture
def smtp():
    server = SmtpServer(spare_port())  # not started: each test decides when the server is up
    yield server
    server.stop()


class ExtraDocuments:
    """A third plugin that contributes a document to the confirmation message."""

    @hookimpl
    def order_documents(self, order, kind):
        if kind == "order_confirmed":
            return [(f"terms-{order.number}.txt", "text/plain", b"our terms of sale")]
        return []


@pytest.fixture
def app_config(smtp):
    return settings(smtp.port, WAREHOUSE_EMAIL="stock@example.com", EXTRA_PLUGINS=[("terms", ExtraDocuments())])


def _messages(app):
    with app.app_context():
        rows = db.session.execute(select(Message).order_by(Message.id)).scalars().all()
        db.session.expunge_all()
        return rows


def test_a_message_is_retried_while_the_smtp_server_is_down_and_sent_once_it_is_back(api, app, smtp):
    stocked_shop(api)
    order = place(api)
    [message] = _messages(app)
    assert (message.status, message.attempts) == ("failed", 1)
    assert "Connection refused" in message.last_error or "Errno" in message.last_error
    failed_at = message.next_attempt_at
    with app.app_context():
        assert sending.send_due(utcnow()) == 0  # not due yet: the back-off is 30 s
        assert sending.send_due(failed_at + timedelta(seconds=1)) == 1  # still down: the second attempt fails
    [message] = _messages(app)
    assert (message.status, message.attempts) == ("failed", 2)
    smtp.start()
    with app.app_context():
        assert sending.send_due(message.next_attempt_at + timedelta(seconds=1)) == 1
        assert sending.send_due(message.next_attempt_at + timedelta(hours=1)) == 0
    [message] = _messages(app)
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, None)
    assert smtp.inbox.subjects() == [f"We received your order {order['number']}"]


def test_a_message_is_dead_when_the_retries_ran_out_and_the_cli_sends_it_again(api, app, smtp):
    stocked_shop(api)
    place(api)
    with app.app_context():
        for _ in range(2):
            due = db.session.execute(select(Message.next_attempt_at)).scalar_one()
            sending.send_due(due + timedelta(seconds=1))
    [message] = _messages(app)
    assert (message.status, message.attempts) == ("dead", 3)
    smtp.start()
    result = app.test_cli_runner().invoke(args=["notifications", "retry"])
    assert result.exit_code == 0, result.output
    assert "1 messages due again, 1 tried now" in result.output
    listed = app.test_cli_runner().invoke(args=["notifications", "list"])
    assert "sent" in listed.output and "order_received" in listed.output and "ann@example.com" in listed.output
    assert len(smtp.inbox.messages) == 1


def test_the_follow_up_waits_for_its_delay_and_is_sent_once(api, app, smtp):
    smtp.start()
    stocked_shop(api)
    order = place(api)
    walk_to_delivered(api, order["id"])
    follow_up = f"Did everything arrive? Your order {order['number']}"
    delivered_at = utcnow()
    for days, completed in ((6, 0), (6.9, 0), (7.01, 1), (30, 0)):
        with app.app_context():
            assert jobs.complete_due_followups(delivered_at + timedelta(days=days)) == completed, days
        jobs.drain(app)
        assert smtp.inbox.subjects().count(follow_up) == (1 if days > 7 else 0), days
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "completed"


def test_two_workers_never_both_send_a_message(api, app, smtp, database):
    stocked_shop(api)
    place(api)  # the server is down: the message waits, failed
    smtp.start()
    [message] = _messages(app)
    due = message.next_attempt_at + timedelta(seconds=1)
    start = threading.Barrier(6)
    results = []

    def worker():
        with app.app_context():
            start.wait()
            results.append(sending.send_message(message.id, due))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["sent"] + ["skipped"] * 5
    assert len(smtp.inbox.messages) == 1


def test_the_low_stock_alert_goes_to_the_warehouse_staff(api, app, smtp):
    """The payload's recipients, else the staff with the warehouse role, else HOOKSHOP_WAREHOUSE_EMAIL."""
    from conftest import order_body, product, receive

    from engine.models import Product
    from engine.services import auth
    from plugins.notify_email import notify

    smtp.start()
    product(api, "LAMP", price=5000, reorder_point=2)
    receive(api, "LAMP", 3)
    assert api.post("/orders", order_body([("LAMP", 1)])).status_code == 201
    assert smtp.inbox.subjects("stock@example.com") == ["Low stock: LAMP"]  # nobody has the warehouse role
    assert "fell to 2 (reorder point 2)" in body(smtp.inbox.to("stock@example.com")[0])
    with app.app_context():
        auth.create_user("wh@example.com", "warehouse", "secret-password-1")
        lamp = db.session.execute(select(Product)).scalar_one()
        notify.stock_alert(lamp, 1, {"id": 9001, "payload": {"sku": "LAMP", "reorder_point": 2}})
        notify.stock_alert(lamp, 1, {"id": 9002, "payload": {"recipients": ["buyer@example.com"]}})
    assert smtp.inbox.subjects("wh@example.com") == ["Low stock: LAMP"]
    assert smtp.inbox.subjects("buyer@example.com") == ["Low stock: LAMP"]


def test_hook_order_documents(api, app, smtp):
    """Every plugin's documents are attached: accounting_export's receipt and a third plugin's terms at
    confirmation, carrier_generic's packing slip at shipping; nothing for a kind nobody answers."""
    smtp.start()
    stocked_shop(api)
    order = place(api)
    walk_to_delivered(api, order["id"])
    received, receipt, shipped = smtp.inbox.messages[:3]
    assert attachments(received) == {}
    files = attachments(receipt)
    assert files[f"terms-{order['number']}.txt"] == "our terms of sale"
    [receipt_pdf] = [name for name in files if name.startswith("receipt-")]
    assert files[receipt_pdf].startswith(b"%PDF")
    assert list(attachments(shipped)) == [f"packing-slip-{order['number']}.pdf"]
    with app.app_context():
        from engine.models import Order
        from engine.plugins import registry

        row = db.session.get(Order, order["id"])
        answers = registry().pm.hook.order_documents(order=row, kind="order_confirmed")
        assert sorted(doc[0] for answer in answers for doc in answer or []) == [
            receipt_pdf, f"terms-{order['number']}.txt"]
        assert all(not answer for answer in registry().pm.hook.order_documents(order=row, kind="order_placed"))


def test_without_an_smtp_host_messages_are_written_to_the_log_with_the_address_masked(api, app, smtp, caplog):
    from dataclasses import replace

    app.extensions["notify_email"] = replace(app.extensions["notify_email"], host=None)
    stocked_shop(api)
    with caplog.at_level("INFO", logger="hookshop.notify_email"):
        order = place(api)
        jobs.drain(app)
    [message] = _messages(app)
    assert message.status == "sent" and smtp.inbox.messages == []
    assert f"We received your order {order['number']}" in caplog.text
    assert "ann@example.com" not in caplog.text and "a***@example.com" in caplog.text
