"""64-bit integers: on PostgreSQL every INTEGER column of accounting_export becomes BIGINT, with its id sequence
(issue #9: ids, money and quantities are 64-bit everywhere). SQLite's INTEGER is 64-bit already.

Revision ID: 0002_accounting_export_64bit
Revises: 0001_accounting_export_baseline
Create Date: 2026-12-01 18:25:00
"""

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from engine.plugin_api import widen_integers

revision = "0002_accounting_export_64bit"
down_revision = "0001_accounting_export_baseline"
branch_labels = None
depends_on = '0002_core_money_flags_64bit'

WIDENED = {'accounting_export_cost_gaps': ['id', 'order_id', 'quantity'],
 'accounting_export_entries': ['id', 'event_id', 'order_id', 'source_id'],
 'accounting_export_order_books': ['order_id'],
 'accounting_export_postings': ['id', 'entry_id', 'line_no', 'quantity'],
 'accounting_export_receipt_counters': ['year', 'last'],
 'accounting_export_receipts': ['id', 'order_id', 'year', 'seq'],
 'accounting_export_sync': ['entry_id', 'attempts']}


def _baseline():
    """The baseline revision of this branch, for its trigger functions."""
    path = Path(__file__).with_name("0001_accounting_export_baseline.py")
    spec = importlib.util.spec_from_file_location("accounting_export_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    widen_integers(WIDENED)
    if op.get_bind().dialect.name == "postgresql":  # the balance check's entry id follows the ids
        op.execute(sa.DDL(_baseline().POSTGRESQL_RULES[0].replace("eid integer", "eid bigint")))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.DDL(_baseline().POSTGRESQL_RULES[0]))

    widen_integers(WIDENED, to="INTEGER")
