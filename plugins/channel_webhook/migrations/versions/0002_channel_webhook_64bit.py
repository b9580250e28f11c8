"""64-bit integers: on PostgreSQL every INTEGER column of channel_webhook becomes BIGINT, with its id sequence
(issue #9: ids, money and quantities are 64-bit everywhere). SQLite's INTEGER is 64-bit already.

Revision ID: 0002_channel_webhook_64bit
Revises: 0001_channel_webhook_baseline
Create Date: 2026-12-01 18:25:00
"""

from engine.plugin_api import widen_integers

revision = "0002_channel_webhook_64bit"
down_revision = "0001_channel_webhook_baseline"
branch_labels = None
depends_on = '0002_core_money_flags_64bit'

WIDENED = {'channel_webhook_attempts': ['id', 'delivery_id', 'number', 'status_code', 'duration_ms'],
 'channel_webhook_channels': ['id'],
 'channel_webhook_deliveries': ['id',
                                'subscription_id',
                                'event_id',
                                'attempts',
                                'last_status_code',
                                'last_duration_ms'],
 'channel_webhook_inbound': ['id', 'order_id', 'status_code', 'attempts'],
 'channel_webhook_subscriptions': ['id', 'consecutive_failures']}


def upgrade():
    widen_integers(WIDENED)

def downgrade():
    widen_integers(WIDENED, to="INTEGER")
