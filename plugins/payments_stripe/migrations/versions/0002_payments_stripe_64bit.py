"""64-bit integers: on PostgreSQL every INTEGER column of payments_stripe becomes BIGINT, with its id sequence
(issue #9: ids, money and quantities are 64-bit everywhere). SQLite's INTEGER is 64-bit already.

Revision ID: 0002_payments_stripe_64bit
Revises: 0001_payments_stripe_baseline
Create Date: 2026-12-01 18:25:00
"""

from engine.plugin_api import widen_integers

revision = "0002_payments_stripe_64bit"
down_revision = "0001_payments_stripe_baseline"
branch_labels = None
depends_on = '0002_core_money_flags_64bit'

WIDENED = {'payments_stripe_operations': ['id', 'order_id', 'attempt', 'amount']}


def upgrade():
    widen_integers(WIDENED)

def downgrade():
    widen_integers(WIDENED, to="INTEGER")
