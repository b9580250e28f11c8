"""The plugin's tables as its models defined them when migrations began.

A database made before migrations (``hookshop init`` ran ``create_all``) has exactly these tables:
``hookshop init`` stamps this revision there instead of running it (``created_before_migrations``).

Revision ID: 0001_carrier_generic_baseline
Create Date: 2026-12-01 17:22:09.436319
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_carrier_generic_baseline"
down_revision = None
branch_labels = ("carrier_generic",)
depends_on = "0001_core_baseline"

# tables a database made by create_all before migrations already has: `hookshop init` adopts it
created_before_migrations = (
    "carrier_generic_sequences",
    "carrier_generic_tracking_events",
)


def upgrade():
    op.create_table(
        "carrier_generic_sequences",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_carrier_generic_sequences")),
    )
    op.create_table(
        "carrier_generic_tracking_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("moved_order", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_carrier_generic_tracking_events_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name=op.f("fk_carrier_generic_tracking_events_shipment_id_shipments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_generic_tracking_events")),
        sa.UniqueConstraint(
            "shipment_id",
            "status",
            "occurred_at",
            name=op.f("uq_carrier_generic_tracking_events_shipment_id"),
        ),
    )
    op.create_index(
        op.f("ix_carrier_generic_tracking_events_order_id"),
        "carrier_generic_tracking_events",
        ["order_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_carrier_generic_tracking_events_shipment_id"),
        "carrier_generic_tracking_events",
        ["shipment_id"],
        unique=False,
    )


def downgrade():
    op.drop_table("carrier_generic_tracking_events")
    op.drop_table("carrier_generic_sequences")
