"""The stage-hook outbox moves onto the retry queue (issue #15): table ``outbox_events`` is dropped.

Every stage-hook event is now a task of kind ``stage_hook`` in ``retry_tasks``: its payload holds the hook,
the hook's payload and the plugins that already handled it (``{"hook", "payload", "done"}``); the task's id
is the event's id (``event["id"]`` of the stage hooks, which plugins use in their idempotency keys and
webhooks in their message ids).

- **Event ids are kept.** Existing tasks are renumbered above every outbox id first (nothing stores a task's
  id: the plugins key their tasks by ``key``), then every outbox row (pending, done and dead: the history)
  is copied with its own id; the key is ``outbox:<id>``. A pending event keeps its ``next_attempt_at`` (a
  lease or a retry) and its attempts; a claim adds one, so its back-off schedule goes on where it was.
- **Ids are never reused.** Done tasks are purged after seven days; on SQLite a table without
  ``AUTOINCREMENT`` would hand the purged highest id out again, and a reused event id would be taken for a
  duplicate by a receiver or a plugin. The table is rebuilt with ``AUTOINCREMENT`` on SQLite; PostgreSQL's
  sequence is set past the copied ids.
- The downgrade copies the ``stage_hook`` tasks back into a new ``outbox_events`` (ids kept, a running task
  becomes pending: its lease was an outbox lease) and deletes them from the queue; the renumbering of the
  other tasks and SQLite's ``AUTOINCREMENT`` stay (neither changes behaviour).

Revision ID: 0016_core_outbox_on_retry_queue
Revises: 0015_core_stock_rule_flag
Create Date: 2026-12-02 22:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_core_outbox_on_retry_queue"
down_revision = "0015_core_stock_rule_flag"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COLUMNS = "id, kind, key, payload, status, attempts, next_attempt_at, leased_until, last_error, created_at, updated_at"


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _scalar(sql: str):
    return op.get_bind().execute(sa.text(sql)).scalar()


def upgrade():
    bind = op.get_bind()
    offset = max(_scalar("SELECT max(id) FROM outbox_events") or 0, _scalar("SELECT max(id) FROM retry_tasks") or 0)
    if offset:  # above every outbox id and every current task id: no two rows share an id on the way
        bind.execute(sa.text("UPDATE retry_tasks SET id = id + :offset"), {"offset": offset})
    if not _postgres():
        # no column changes: the batch only rebuilds the table (copy, drop, rename) with AUTOINCREMENT
        with op.batch_alter_table("retry_tasks", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
    payload = ("jsonb_build_object('hook', hook, 'payload', payload, 'done', done_plugins)" if _postgres() else
               "json_object('hook', hook, 'payload', json(payload), 'done', json(done_plugins))")
    bind.execute(sa.text(
        f"INSERT INTO retry_tasks ({COLUMNS}) SELECT id, 'stage_hook', 'outbox:' || id, {payload}, status, attempts, "
        "next_attempt_at, NULL, last_error, created_at, coalesce(processed_at, created_at) FROM outbox_events"))
    if _postgres():
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('retry_tasks', 'id'), max(id)) FROM retry_tasks "
                             "HAVING max(id) IS NOT NULL"))
    op.drop_index("ix_outbox_status_next", table_name="outbox_events")
    op.drop_table("outbox_events")


def downgrade():
    op.create_table(
        "outbox_events",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", BIGINT, nullable=False),
        sa.Column("done_plugins", JSON, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index("ix_outbox_status_next", "outbox_events", ["status", "next_attempt_at"], unique=False)
    if _postgres():
        parts = "payload->>'hook', payload->'payload', coalesce(payload->'done', '[]'::jsonb)"
    else:
        parts = ("json_extract(payload, '$.hook'), json_extract(payload, '$.payload'), "
                 "coalesce(json_extract(payload, '$.done'), '[]')")
    bind = op.get_bind()
    bind.execute(sa.text(
        "INSERT INTO outbox_events (id, hook, payload, done_plugins, status, attempts, last_error, next_attempt_at, "
        f"created_at, processed_at) SELECT id, {parts}, CASE status WHEN 'running' THEN 'pending' ELSE status END, "
        "attempts, last_error, CASE WHEN status = 'running' THEN coalesce(leased_until, next_attempt_at) "
        "ELSE next_attempt_at END, created_at, CASE WHEN status = 'done' THEN updated_at END "
        "FROM retry_tasks WHERE kind = 'stage_hook'"))
    bind.execute(sa.text("DELETE FROM retry_tasks WHERE kind = 'stage_hook'"))
    if _postgres():
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('outbox_events', 'id'), max(id)) "
                             "FROM outbox_events HAVING max(id) IS NOT NULL"))
