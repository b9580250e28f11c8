"""The accounting sync runs on the core's retry queue (issue #15): every journal entry not synced yet gets
its task in ``retry_tasks`` (kind ``accounting_export.sync``, key: the entry's id), in the entries' order:
a ``pending`` entry a pending task, due when its sync row was, with its attempts and last error; a
``failed`` (retries ran out) or ``rejected`` entry a ``dead`` task (``hookshop accounting sync
--retry-failed`` queues the failed ones again). The sync rows stay what the API shows. The downgrade
removes the plugin's tasks.

Revision ID: 0003_accounting_export_tasks
Revises: 0002_accounting_export_64bit
Create Date: 2026-12-02 14:15:00
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_accounting_export_tasks"
down_revision = "0002_accounting_export_64bit"
branch_labels = None
depends_on = "0014_core_retry_queue"

KIND = "accounting_export.sync"
SYNC = sa.table("accounting_export_sync", sa.column("entry_id", sa.BigInteger), sa.column("status", sa.String),
                sa.column("attempts", sa.BigInteger), sa.column("next_attempt_at", sa.DateTime(timezone=True)),
                sa.column("last_error", sa.Text))


def upgrade():
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = conn.execute(sa.select(SYNC).where(SYNC.c.status.in_(("pending", "failed", "rejected")))
                        .order_by(SYNC.c.entry_id)).all()
    payload = "CAST(:payload AS JSONB)" if conn.dialect.name == "postgresql" else ":payload"
    insert = sa.text("INSERT INTO retry_tasks (kind, key, payload, status, attempts, next_attempt_at, last_error, "
                     f"created_at, updated_at) VALUES (:kind, :key, {payload}, :status, :attempts, :next, :error, "
                     ":now, :now)")
    for row in rows:
        conn.execute(insert, {"kind": KIND, "key": str(row.entry_id), "payload": json.dumps({"entry_id": row.entry_id}),
                              "status": "pending" if row.status == "pending" else "dead", "attempts": row.attempts,
                              "next": row.next_attempt_at or now, "error": row.last_error, "now": now})


def downgrade():
    op.execute(sa.text("DELETE FROM retry_tasks WHERE kind = :kind").bindparams(kind=KIND))
