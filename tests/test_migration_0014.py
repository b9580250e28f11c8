"""Revision 0014_core_retry_queue and the plugins' revisions that move their waiting work onto it
(0003_channel_webhook_retry_queue, 0003_accounting_export_tasks): a database at the previous heads, with
webhook deliveries and journal entries still waiting, keeps every one of them as a task due when it was;
the work that had run out of retries becomes a dead task; and the way back removes the tasks."""

from __future__ import annotations

import json

import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401

from engine import schema
from engine.db import db

PREVIOUS = ("0013_core_staff_admin", "0002_channel_webhook_64bit", "0002_accounting_export_64bit")
LATER = "2026-01-05 10:05:00"


def _waiting_work(conn) -> None:
    conn.execute(sa.text("INSERT INTO channel_webhook_subscriptions (id, url, events, secret, status, "
                         "consecutive_failures, created_at) VALUES (1, 'https://hooks.example/x', :events, 'whsec_x', "
                         "'active', 2, :now)"), {"events": json.dumps(["*"]), "now": NOW})
    for delivery_id, status, attempts in ((1, "pending", 2), (2, "sending", 1), (3, "delivered", 1), (4, "failed", 13)):
        conn.execute(sa.text(
            "INSERT INTO channel_webhook_deliveries (id, subscription_id, event_id, event_type, webhook_id, body, "
            "status, attempts, next_attempt_at, last_error, created_at) VALUES (:id, 1, :id, 'order_placed', "
            ":wid, '{}', :status, :attempts, :later, 'HTTP 503', :now)"),
            {"id": delivery_id, "wid": f"msg_{delivery_id}_1", "status": status, "attempts": attempts,
             "later": LATER, "now": NOW})
    for entry_id, status in ((1, "synced"), (2, "pending"), (3, "failed"), (4, "pending")):
        for line_no, account, amount in ((1, "Assets:Bank", 1000), (2, "Income:Sales", -1000)):
            conn.execute(sa.text(
                "INSERT INTO accounting_export_postings (entry_id, line_no, account, role, amount, currency) "
                "VALUES (:id, :line, :account, 'x', :amount, 'EUR')"),
                {"id": entry_id, "line": line_no, "account": account, "amount": amount})
        conn.execute(sa.text(
            "INSERT INTO accounting_export_entries (id, uid, source_key, kind, booking_date, description, created_at) "
            "VALUES (:id, :uid, :key, 'sale', '2026-01-05', 'a sale', :now)"),
            {"id": entry_id, "uid": f"u{entry_id:031d}", "key": f"sale:{entry_id}", "now": NOW})
        conn.execute(sa.text("INSERT INTO accounting_export_sync (entry_id, status, attempts, next_attempt_at, "
                             "last_error) VALUES (:id, :status, 1, :later, 'HTTP 500')"),
                     {"id": entry_id, "status": status, "later": LATER})


def test_0014_and_the_plugins_move_waiting_work_onto_the_retry_queue(shop, database):  # noqa: F811
    app = shop()
    for revision in PREVIOUS:
        schema.upgrade(app, revision)
    with app.app_context(), db.engine.begin() as conn:
        assert "retry_tasks" not in sa.inspect(conn).get_table_names()
        _waiting_work(conn)
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0014_core_retry_queue" in result.output and "0003_channel_webhook_retry_queue" in result.output
    assert run(app, "db", "check").exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        tasks = conn.execute(sa.text("SELECT kind, key, payload, status, attempts, next_attempt_at, last_error "
                                     "FROM retry_tasks ORDER BY id")).all()
        found = {(t.kind, t.key): (t.status, t.attempts, t.last_error) for t in tasks}
        assert found == {
            ("channel_webhook.delivery", "1"): ("pending", 2, "HTTP 503"),
            ("channel_webhook.delivery", "2"): ("pending", 1, "HTTP 503"),
            ("channel_webhook.delivery", "4"): ("dead", 13, "HTTP 503"),
            ("accounting_export.sync", "2"): ("pending", 1, "HTTP 500"),
            ("accounting_export.sync", "3"): ("dead", 1, "HTTP 500"),
            ("accounting_export.sync", "4"): ("pending", 1, "HTTP 500"),
        }
        payloads = {(t.kind, t.key): (t.payload if isinstance(t.payload, dict) else json.loads(t.payload))
                    for t in tasks}
        assert payloads[("channel_webhook.delivery", "1")] == {"delivery_id": 1}
        assert payloads[("accounting_export.sync", "4")] == {"entry_id": 4}
        due = {t.key: str(t.next_attempt_at)[:19] for t in tasks if t.kind == "accounting_export.sync"}
        assert due["2"] == LATER  # due when the sync row was
        statuses = dict(conn.execute(sa.text("SELECT id, status FROM channel_webhook_deliveries")).all())
        assert statuses == {1: "pending", 2: "pending", 3: "delivered", 4: "failed"}  # the dead sender's claim ended
        # the queue's own rule holds: one task per kind and key
        duplicate = sa.text("INSERT INTO retry_tasks (kind, key, payload, status, attempts, next_attempt_at, "
                            "created_at, updated_at) VALUES ('accounting_export.sync', '2', '{}', 'pending', 0, "
                            ":now, :now, :now)")
        try:
            with conn.begin_nested():
                conn.execute(duplicate, {"now": NOW})
            raise AssertionError("a second task with one kind and key was stored")
        except sa.exc.IntegrityError:
            pass
    for revision in PREVIOUS[1:]:
        result = run(app, "db", "downgrade", revision)
        assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM retry_tasks")).scalar() == 0
    assert run(app, "db", "downgrade", PREVIOUS[0]).exit_code == 0
    with app.app_context(), db.engine.connect() as conn:
        assert "retry_tasks" not in sa.inspect(conn).get_table_names()
    assert run(app, "db", "upgrade", "heads").exit_code == 0
