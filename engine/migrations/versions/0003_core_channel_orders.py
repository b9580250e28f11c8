"""Channel orders as the platforms send them (issue #10).

- ``orders.billing_address``; ``orders.shipping_address`` and ``orders.email`` may be NULL (an order
  without shipping address or e-mail is accepted and flagged ``review:address`` / ``no_email``).
- ``orders.non_stock_lines`` (gift cards, tips, fees, lines without sku or shipping: in the totals,
  never reserved nor picked), ``tax_lines``, ``prices_include_tax``, ``tax_status``,
  ``presentment_currency`` and ``presentment_totals`` (the buyer's currency and amounts).
- ``customers.email`` may be NULL; ``customers.channel`` and ``channel_customer_id`` (unique together)
  keep one profile per channel customer without e-mail.

Existing orders get ``non_stock_lines`` and ``tax_lines`` ``[]``, ``prices_include_tax`` false and
``tax_status`` ``not_given`` (nobody said anything about their tax).

Revision ID: 0003_core_channel_orders
Revises: 0002_core_money_flags_64bit
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from engine.errors import SchemaError

revision = "0003_core_channel_orders"
down_revision = "0002_core_money_flags_64bit"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("orders") as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
        batch_op.alter_column("shipping_address", existing_type=JSON, nullable=True)
        batch_op.add_column(sa.Column("billing_address", JSON, nullable=True))
        batch_op.add_column(sa.Column("non_stock_lines", JSON, nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("tax_lines", JSON, nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("prices_include_tax", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("tax_status", sa.String(length=24), nullable=False,
                                      server_default="not_given"))
        batch_op.add_column(sa.Column("presentment_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("presentment_totals", JSON, nullable=True))
    # the defaults filled the existing rows; new rows get theirs from the models
    with op.batch_alter_table("orders") as batch_op:
        for name in ("non_stock_lines", "tax_lines", "prices_include_tax", "tax_status"):
            batch_op.alter_column(name, server_default=None)
    with op.batch_alter_table("customers") as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
        batch_op.add_column(sa.Column("channel", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("channel_customer_id", sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint("uq_customers_channel_customer", ["channel", "channel_customer_id"])


def downgrade():
    bind = op.get_bind()
    missing = bind.execute(sa.text("SELECT count(*) FROM orders WHERE email IS NULL OR shipping_address IS NULL"
                                   )).scalar_one()
    missing += bind.execute(sa.text("SELECT count(*) FROM customers WHERE email IS NULL")).scalar_one()
    if missing:
        raise SchemaError(f"{missing} orders or customers have no e-mail or shipping address: the previous "
                           "schema cannot hold them; give them one first")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_constraint("uq_customers_channel_customer", type_="unique")
        batch_op.drop_column("channel_customer_id")
        batch_op.drop_column("channel")
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
    with op.batch_alter_table("orders") as batch_op:
        for name in ("presentment_totals", "presentment_currency", "tax_status", "prices_include_tax", "tax_lines",
                     "non_stock_lines", "billing_address"):
            batch_op.drop_column(name)
        batch_op.alter_column("shipping_address", existing_type=JSON, nullable=False)
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
