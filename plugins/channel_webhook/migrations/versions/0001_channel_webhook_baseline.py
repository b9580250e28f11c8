"""The plugin's tables as its models defined them when migrations began.

A database made before migrations (``hookshop init`` ran ``create_all``) has exactly these tables:
``hookshop init`` stamps this revision there instead of running it (``created_before_migrations``).

Revision ID: 0001_channel_webhook_baseline
Create Date: 2026-12-01 17:22:12.838077
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_channel_webhook_baseline"
down_revision = None
branch_labels = ("channel_webhook",)
depends_on = "0001_core_baseline"

# tables a database made by create_all before migrations already has: `hookshop init` adopts it
created_before_migrations = (
    "channel_webhook_channels",
    "channel_webhook_subscriptions",
    "channel_webhook_deliveries",
    "channel_webhook_attempts",
    "channel_webhook_inbound",
)

# the engine's JSONType (engine/db.py) as it was at this revision
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "channel_webhook_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("previous_secret", sa.String(length=255), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sku_map", JSON, nullable=False),
        sa.Column("payment_provider", sa.String(length=64), nullable=False),
        sa.Column("payment_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_webhook_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_channel_webhook_channels_name")),
    )
    op.create_table(
        "channel_webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("previous_secret", sa.String(length=255), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_webhook_subscriptions")),
    )
    op.create_table(
        "channel_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("webhook_id", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["channel_webhook_subscriptions.id"],
            name=op.f("fk_channel_webhook_deliveries_subscription_id_channel_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_webhook_deliveries")),
        sa.UniqueConstraint(
            "subscription_id", "event_id", name=op.f("uq_channel_webhook_deliveries_subscription_id")
        ),
    )
    op.create_index(
        "ix_channel_webhook_deliveries_status_next",
        "channel_webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_channel_webhook_deliveries_subscription_id"),
        "channel_webhook_deliveries",
        ["subscription_id"],
        unique=False,
    )
    op.create_table(
        "channel_webhook_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["channel_webhook_deliveries.id"],
            name=op.f("fk_channel_webhook_attempts_delivery_id_channel_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_webhook_attempts")),
    )
    op.create_index(
        op.f("ix_channel_webhook_attempts_delivery_id"),
        "channel_webhook_attempts",
        ["delivery_id"],
        unique=False,
    )
    op.create_table(
        "channel_webhook_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=48), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("errors", JSON, nullable=False),
        sa.Column("extra", JSON, nullable=False),
        sa.Column("payload", JSON, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_channel_webhook_inbound_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_webhook_inbound")),
        sa.UniqueConstraint("channel", "delivery_id", name=op.f("uq_channel_webhook_inbound_channel")),
    )
    op.create_index(
        "ix_channel_webhook_inbound_channel_outcome",
        "channel_webhook_inbound",
        ["channel", "outcome", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_channel_webhook_inbound_external_id"),
        "channel_webhook_inbound",
        ["external_id"],
        unique=False,
    )


def downgrade():
    op.drop_table("channel_webhook_inbound")
    op.drop_table("channel_webhook_attempts")
    op.drop_table("channel_webhook_deliveries")
    op.drop_table("channel_webhook_subscriptions")
    op.drop_table("channel_webhook_channels")
