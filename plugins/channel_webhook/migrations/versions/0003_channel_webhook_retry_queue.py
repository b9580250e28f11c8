"""Outbound deliveries retry on the core's retry queue (issue #15): every delivery still waiting
(``pending``, or ``sending``: claimed by a sender when the upgrade ran) gets its task in ``retry_tasks``
(kind ``channel_webhook.delivery``, key: the delivery's id), due when the delivery was, with its attempts
so far; a ``sending`` delivery becomes ``pending`` (its sender's lease belonged to the old code). A delivery
that ``failed`` (retries ran out, or 410 Gone) gets a ``dead`` task: ``hookshop tasks`` lists it.
The downgrade removes the plugin's tasks: the deliveries keep their status and next attempt.

Revision ID: 0003_channel_webhook_retry_queue
Revises: 0002_channel_webhook_64bit
Create Date: 2026-12-02 14:10:00
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_channel_webhook_retry_queue"
down_revision = "0002_channel_webhook_64bit"
branch_labels = None
depends_on = "0014_core_retry_queue"

KIND = "channel_webhook.delivery"
DELIVERIES = sa.table("channel_webhook_deliveries", sa.column("id", sa.BigInteger), sa.column("status", sa.String),
                      sa.column("attempts", sa.BigInteger), sa.column("next_attempt_at", sa.DateTime(timezone=True)),
                      sa.column("last_error", sa.Text))
TASKS = sa.table("retry_tasks", sa.column("kind", sa.String), sa.column("key", sa.String),
                 sa.column("payload", sa.Text), sa.column("status", sa.String), sa.column("attempts", sa.BigInteger),
                 sa.column("next_attempt_at", sa.DateTime(timezone=True)), sa.column("last_error", sa.Text),
                 sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)))


def upgrade():
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = conn.execute(sa.select(DELIVERIES).where(DELIVERIES.c.status.in_(("pending", "sending", "failed")))
                        .order_by(DELIVERIES.c.id)).all()
    payload = "CAST(:payload AS JSONB)" if conn.dialect.name == "postgresql" else ":payload"
    insert = sa.text("INSERT INTO retry_tasks (kind, key, payload, status, attempts, next_attempt_at, last_error, "
                     f"created_at, updated_at) VALUES (:kind, :key, {payload}, :status, :attempts, :next, :error, "
                     ":now, :now)")
    for row in rows:
        conn.execute(insert, {"kind": KIND, "key": str(row.id), "payload": json.dumps({"delivery_id": row.id}),
                              "status": "dead" if row.status == "failed" else "pending", "attempts": row.attempts,
                              "next": row.next_attempt_at or now, "error": row.last_error, "now": now})
    conn.execute(sa.update(DELIVERIES).where(DELIVERIES.c.status == "sending").values(status="pending"))


def downgrade():
    op.execute(sa.text("DELETE FROM retry_tasks WHERE kind = :kind").bindparams(kind=KIND))
