"""A flag on the stock levels: the product has reorder rules for a location (issue #14, placement speed).

- ``stock_levels.has_location_rules`` (boolean, not null, default false): true on every level of a product
  that has at least one reorder rule with a location. Placement locks the reorder rules only of products
  that have such a rule or a product-wide reorder point (``products.reorder_point`` > 0): most placements
  then send no ``SELECT ... FOR UPDATE`` on ``reorder_rules``. The rules' service keeps the flag under the
  product row and stock level locks placement queues on (docs/design-decisions.md, "The reorder flag").
- The upgrade backfills the flag from the stored rules; the downgrade drops the column.

Revision ID: 0015_core_stock_rule_flag
Revises: 0014_core_retry_queue
Create Date: 2026-12-02 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_core_stock_rule_flag"
down_revision = "0014_core_retry_queue"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stock_levels") as batch:
        batch.add_column(sa.Column("has_location_rules", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(sa.text(
        "UPDATE stock_levels SET has_location_rules = true WHERE EXISTS (SELECT 1 FROM reorder_rules "
        "WHERE reorder_rules.product_id = stock_levels.product_id AND reorder_rules.location_id IS NOT NULL)"))


def downgrade():
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_column("has_location_rules")
