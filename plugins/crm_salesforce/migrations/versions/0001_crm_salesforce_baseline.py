"""crm_salesforce's tables: the sync status of every mirrored record, and the commands' checkpoints.

Revision ID: 0001_crm_salesforce_baseline
Create Date: 2026-12-02 08:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_crm_salesforce_baseline"
down_revision = None
branch_labels = ("crm_salesforce",)
depends_on = "0001_core_baseline"

# the engine's JSONType (engine/db.py) as it was at this revision
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already (and its primary key must be INTEGER)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "crm_salesforce_records",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hookshop_id", BIGINT, nullable=False),
        sa.Column("sobject", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", BIGINT, nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("salesforce_id", sa.String(length=18), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("synced_hash", sa.String(length=64), nullable=True),
        sa.Column("version", BIGINT, nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_crm_salesforce_records_attempts_not_negative")),
        sa.CheckConstraint("kind IN ('account', 'contact', 'order')", name=op.f("ck_crm_salesforce_records_kind_known")),
        sa.CheckConstraint("status IN ('pending', 'synced', 'error')",
                           name=op.f("ck_crm_salesforce_records_status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_salesforce_records")),
        sa.UniqueConstraint("kind", "hookshop_id", name="uq_crm_salesforce_records_kind_hookshop_id"),
    )
    op.create_index("ix_crm_salesforce_records_status", "crm_salesforce_records", ["status", "next_attempt_at"],
                    unique=False)
    op.create_table(
        "crm_salesforce_checkpoints",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_crm_salesforce_checkpoints")),
    )


def downgrade():
    op.drop_table("crm_salesforce_checkpoints")
    op.drop_table("crm_salesforce_records")
