"""64-bit integers: on PostgreSQL every INTEGER column of carrier_generic becomes BIGINT, with its id sequence
(issue #9: ids, money and quantities are 64-bit everywhere). SQLite's INTEGER is 64-bit already.

Revision ID: 0002_carrier_generic_64bit
Revises: 0001_carrier_generic_baseline
Create Date: 2026-12-01 18:25:00
"""

from engine.plugin_api import widen_integers

revision = "0002_carrier_generic_64bit"
down_revision = "0001_carrier_generic_baseline"
branch_labels = None
depends_on = '0002_core_money_flags_64bit'

WIDENED = {'carrier_generic_tracking_events': ['id', 'shipment_id', 'order_id']}


def upgrade():
    widen_integers(WIDENED)

def downgrade():
    widen_integers(WIDENED, to="INTEGER")
