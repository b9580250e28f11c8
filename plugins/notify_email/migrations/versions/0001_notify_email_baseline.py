"""notify_email's table: every e-mail, once per (event, template, recipient).

Revision ID: 0001_notify_email_baseline
Create Date: 2026-12-01 20:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_notify_email_baseline"
down_revision = None
branch_labels = ("notify_email",)
depends_on = "0001_core_baseline"

# the engine's JSONType (engine/db.py) as it was at this revision
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already (and its primary key must be INTEGER)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "notify_email_messages",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("event_key", sa.String(length=400), nullable=False),
        sa.Column("event_id", BIGINT, nullable=True),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("order_id", BIGINT, nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", BIGINT, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notify_email_messages_attempts_not_negative")),
        sa.CheckConstraint("status IN ('queued', 'sent', 'failed', 'dead')",
                           name=op.f("ck_notify_email_messages_status_known")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_notify_email_messages_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_email_messages")),
        sa.UniqueConstraint("event_key", name=op.f("uq_notify_email_messages_event_key")),
    )
    op.create_index("ix_notify_email_messages_due", "notify_email_messages", ["status", "next_attempt_at"],
                    unique=False)
    op.create_index("ix_notify_email_messages_order_id", "notify_email_messages", ["order_id", "id"], unique=False)


def downgrade():
    op.drop_table("notify_email_messages")
