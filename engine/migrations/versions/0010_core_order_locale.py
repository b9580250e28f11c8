"""The buyer's language on the order (issue #12, notifications).

- ``orders.locale``: a BCP 47 tag (``tr-TR``) from ``POST /orders``'s ``locale`` or the channel
  (Shopify's ``customer_locale``, WPML's ``lang`` on WooCommerce). Existing orders have none: their
  e-mails use the customer's language, else the shop's ``HOOKSHOP_DEFAULT_LOCALE``.

Revision ID: 0010_core_order_locale
Revises: 0009_core_counts
Create Date: 2026-12-01 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_core_order_locale"
down_revision = "0009_core_counts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=35), nullable=True))


def downgrade():
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("locale")
