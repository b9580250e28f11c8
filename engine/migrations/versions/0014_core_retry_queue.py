"""The engine's one retry queue (issue #15): table ``retry_tasks``.

One row per unit of retried work of a kind (outbound webhook deliveries and the accounting sync move onto
it in their plugins' own revisions, which depend on this one): ``(kind, key)`` unique, so enqueueing is
idempotent; ``status`` pending, running (leased until ``leased_until``), done or dead.

Revision ID: 0014_core_retry_queue
Revises: 0013_core_staff_admin
Create Date: 2026-12-02 14:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014_core_retry_queue"
down_revision = "0013_core_staff_admin"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "retry_tasks",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", BIGINT, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retry_tasks")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_retry_tasks_kind")),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'dead')", name=op.f("ck_retry_tasks_status_known")),
    )
    op.create_index("ix_retry_tasks_due", "retry_tasks", ["status", "next_attempt_at"])
    op.create_index("ix_retry_tasks_lease", "retry_tasks", ["status", "leased_until"])


def downgrade():
    op.drop_table("retry_tasks")
