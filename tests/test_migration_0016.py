"""Revision 0016_core_outbox_on_retry_queue: every outbox event (pending, done, dead) becomes a task of kind
``stage_hook`` with its own id, the tasks already queued are renumbered above the events, ids are never handed
out twice, and the way back recreates ``outbox_events`` from the tasks (a leased one becomes pending)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from test_migrations import NOW, empty_url, run, shop  # noqa: F401

from engine import outbox, schema
from engine.db import as_utc, db
from engine.retry_queue import TASKS

REVISION = "0016_core_outbox_on_retry_queue"
LATER = "2026-01-05 10:05:00"

OUTBOX_ROWS = (  # id, hook, payload, status, attempts, done_plugins, last_error, processed_at
    (1, "order_paid", {"order": {"id": 7}}, "pending", 2, ["acme"], "boom", None),
    (2, "order_placed", {"order": {"id": 8}}, "done", 1, [], None, LATER),
    (5, "order_shipped", {"order": {"id": 9}}, "dead", 12, ["acme", "crm"], "gone for good", None),
)


def _insert_previous_rows(conn) -> None:
    for row_id, hook, payload, status, attempts, done, error, processed in OUTBOX_ROWS:
        conn.execute(sa.text(
            "INSERT INTO outbox_events (id, hook, payload, status, attempts, done_plugins, last_error, "
            "next_attempt_at, created_at, processed_at) VALUES (:id, :hook, :payload, :status, :attempts, :done, "
            ":error, :now, :now, :processed)"),
            {"id": row_id, "hook": hook, "payload": json.dumps(payload), "status": status, "attempts": attempts,
             "done": json.dumps(done), "error": error, "now": NOW, "processed": processed})
    for row_id, key, status in ((1, "delivery:1", "pending"), (2, "delivery:2", "done")):
        conn.execute(sa.text(
            "INSERT INTO retry_tasks (id, kind, key, payload, status, attempts, next_attempt_at, created_at, "
            "updated_at) VALUES (:id, 'webhook_delivery', :key, :payload, :status, 1, :now, :now, :now)"),
            {"id": row_id, "key": key, "payload": json.dumps({"n": row_id}), "status": status, "now": NOW})


def _new_task(conn, key: str, **values) -> int:
    row = {"kind": "stage_hook", "key": key, "payload": {"hook": "order_paid", "payload": {}, "done": []},
           "status": "pending", "attempts": 0, "next_attempt_at": as_utc_text(NOW), "created_at": as_utc_text(NOW),
           "updated_at": as_utc_text(NOW), **values}
    return conn.execute(sa.insert(TASKS).returning(TASKS.c.id), row).scalar_one()


def as_utc_text(value) -> datetime:
    """A timestamp as it comes back from raw SQL (text on SQLite) or a literal, in UTC."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def test_0016_moves_every_outbox_event_onto_the_retry_queue_with_its_id(shop, database):  # noqa: F811
    app = shop()
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        _insert_previous_rows(conn)
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output

    with app.app_context():
        assert "outbox_events" not in sa.inspect(db.engine).get_table_names()
        with db.engine.begin() as conn:
            rows = {r.id: r for r in conn.execute(sa.select(TASKS).order_by(TASKS.c.id))}
            # the tasks that were queued moved above the highest event id (5), in their order
            assert [(i, rows[i].kind, rows[i].key, rows[i].status, rows[i].payload) for i in (6, 7)] == [
                (6, "webhook_delivery", "delivery:1", "pending", {"n": 1}),
                (7, "webhook_delivery", "delivery:2", "done", {"n": 2})]
            # every event kept its id, status, attempts and error; its payload holds hook, payload and progress
            assert sorted(rows) == [1, 2, 5, 6, 7]
            for row_id, hook, payload, status, attempts, done, error, _processed in OUTBOX_ROWS:
                task = rows[row_id]
                assert (task.kind, task.key, task.status, task.attempts, task.last_error, task.leased_until) == (
                    "stage_hook", f"outbox:{row_id}", status, attempts, error, None)
                assert task.payload == {"hook": hook, "payload": payload, "done": done}
            assert as_utc(rows[2].updated_at) == as_utc_text(LATER)  # a done event: when it was processed
            assert as_utc(rows[1].updated_at) == as_utc_text(NOW)

            # new events get ids above every copied one, and an id is never handed out twice, even when the
            # highest task was purged (SQLite: AUTOINCREMENT; PostgreSQL: the sequence was set)
            first = _new_task(conn, "new-1")
            assert first == 8
            conn.execute(sa.delete(TASKS).where(TASKS.c.id == first))
            second = _new_task(conn, "new-2", status="running", attempts=1, leased_until=as_utc_text(LATER))
            assert second == 9
        # the status check survived the rebuild
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            _new_task(conn, "bogus", status="lost")
        # the engine reads them as stage events
        dead = outbox.events("dead")
        assert [(e.id, e.hook, e.payload, e.attempts, e.done_plugins) for e in dead] == [
            (5, "order_shipped", {"order": {"id": 9}}, 12, ["acme", "crm"])]
        assert [e.id for e in outbox.events(outbox.WAITING)] == [1, 9]
        assert outbox.dead_count() == 1
        db.session.remove()

    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        events = sa.Table("outbox_events", sa.MetaData(), autoload_with=conn)
        back = {r.id: r for r in conn.execute(sa.select(events))}
        assert sorted(back) == [1, 2, 5, 9]
        for row_id, hook, payload, status, attempts, done, error, _processed in OUTBOX_ROWS:
            row = back[row_id]
            loaded = [json.loads(v) if isinstance(v, str) else v for v in (row.payload, row.done_plugins)]
            assert (row.hook, loaded, row.status, row.attempts, row.last_error) == (
                hook, [payload, done], status, attempts, error)
        # the leased task is pending again, due when its lease ends
        assert (back[9].status, back[9].attempts) == ("pending", 1)
        assert as_utc_text(back[9].next_attempt_at) == as_utc_text(LATER)
        assert back[2].processed_at is not None and back[1].processed_at is None
        assert conn.execute(sa.text("SELECT kind, id FROM retry_tasks ORDER BY id")).all() == [
            ("webhook_delivery", 6), ("webhook_delivery", 7)]
