"""Products can be archived (issue #11, catalog).

- ``products.archived_at``: when the product was retired (``PATCH /products/{sku}`` with
  ``archived: true``); NULL for every existing product, so all of them stay live.
- ``ix_products_live_id`` and ``ix_products_archived_id``: partial indexes on the id of the live and
  of the archived products, for ``GET /products`` (newest first, ``archived`` false or true).

Revision ID: 0004_core_product_archive
Revises: 0003_core_channel_orders
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_core_product_archive"
down_revision = "0003_core_channel_orders"
branch_labels = None
depends_on = None

LIVE = sa.text("archived_at IS NULL")
ARCHIVED = sa.text("archived_at IS NOT NULL")


def upgrade():
    # a nullable column without a default: SQLite's ALTER TABLE ADD COLUMN, no table rebuild
    op.add_column("products", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_products_live_id", "products", ["id"], postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index("ix_products_archived_id", "products", ["id"], postgresql_where=ARCHIVED,
                    sqlite_where=ARCHIVED)


def downgrade():
    op.drop_index("ix_products_archived_id", table_name="products")
    op.drop_index("ix_products_live_id", table_name="products")
    # batch mode: SQLite before 3.35 cannot drop a column in place (the table is rebuilt)
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_column("archived_at")
