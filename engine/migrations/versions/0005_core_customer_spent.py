"""Customers' spending per currency (issue #10).

- ``customers.spent_by_currency``: ``{"EUR": 125000, "JPY": 300000}``, what the customer spent in each
  currency (orders placed, less refunds and cancellations). Before, ``total_spent`` added every currency
  together; it now holds the amount in the profile's ``currency`` (the first order's).

The upgrade computes the map from the orders (the totals of orders not cancelled, less what was refunded
on them), sets ``total_spent`` to its entry for the profile's currency, and gives profiles without a
currency the one they spent most in. The downgrade drops the map; ``total_spent`` keeps the amount in the
profile's currency.

Revision ID: 0005_core_customer_spent
Revises: 0004_core_product_archive
Create Date: 2026-12-03 10:00:00
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_core_customer_spent"
down_revision = "0004_core_product_archive"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("spent_by_currency", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("customers") as batch_op:
        batch_op.alter_column("spent_by_currency", server_default=None)
    bind = op.get_bind()
    spent: dict[int, dict[str, int]] = defaultdict(dict)
    for customer_id, currency, amount in bind.execute(sa.text(
            "SELECT customer_id, currency, SUM(total - refunded_total) FROM orders WHERE status <> 'cancelled' "
            "GROUP BY customer_id, currency")):
        if amount and int(amount) > 0:
            spent[customer_id][currency] = int(amount)
    if not spent:
        return
    currencies = dict(bind.execute(sa.text("SELECT id, currency FROM customers")).all())
    customers = sa.table("customers", sa.column("id", sa.BigInteger), sa.column("spent_by_currency", JSON),
                         sa.column("total_spent", sa.BigInteger), sa.column("currency", sa.String(3)))
    for customer_id, amounts in spent.items():
        currency = currencies.get(customer_id) or max(amounts, key=lambda c: (amounts[c], c))
        bind.execute(customers.update().where(customers.c.id == customer_id).values(
            spent_by_currency=amounts, total_spent=amounts.get(currency, 0), currency=currency))


def downgrade():
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("spent_by_currency")
