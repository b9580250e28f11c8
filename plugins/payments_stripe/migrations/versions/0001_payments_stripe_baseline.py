"""The plugin's tables as its models defined them when migrations began.

A database made before migrations (``hookshop init`` ran ``create_all``) has exactly these tables:
``hookshop init`` stamps this revision there instead of running it (``created_before_migrations``).

Revision ID: 0001_payments_stripe_baseline
Create Date: 2026-12-01 17:21:54.923798
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_payments_stripe_baseline"
down_revision = None
branch_labels = ("payments_stripe",)
depends_on = "0001_core_baseline"

# tables a database made by create_all before migrations already has: `hookshop init` adopts it
created_before_migrations = ("payments_stripe_operations",)


def upgrade():
    op.create_table(
        "payments_stripe_operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=200), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("stripe_status", sa.String(length=32), nullable=True),
        sa.Column("result_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_payments_stripe_operations_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments_stripe_operations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_stripe_operations_idempotency_key")),
        sa.UniqueConstraint(
            "order_id", "operation", "attempt", name=op.f("uq_payments_stripe_operations_order_id")
        ),
    )
    op.create_index(
        op.f("ix_payments_stripe_operations_order_id"),
        "payments_stripe_operations",
        ["order_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_payments_stripe_operations_payment_intent_id"),
        "payments_stripe_operations",
        ["payment_intent_id"],
        unique=False,
    )


def downgrade():
    op.drop_table("payments_stripe_operations")
