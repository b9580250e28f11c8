"""Adjustments, cycle counts and reconciliation (issue #11).

- ``stock_movements.reason``, ``.staff``, ``.note``: an ``adjustment`` movement says why (count_correction,
  damage, loss, found) and who made it (a CHECK: adjustments have both). Adjustments written before this
  revision (none by the engine; a script's maybe) get ``count_correction`` by ``unknown (before 0009)``.
- ``stock_counts``, ``stock_count_lines``, ``stock_count_serials``: cycle counts of a location.
- ``ix_reservations_product_open``: open reservations per product and location (the reconciliation).

The downgrade drops the counts and the three columns (the adjustments stay in the ledger as movements).

Revision ID: 0009_core_counts
Revises: 0008_core_purchasing
Create Date: 2026-12-01 20:18:20.457815
"""

import sqlalchemy as sa
from alembic import op

revision = '0009_core_counts'
down_revision = "0008_core_purchasing"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stock_counts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ledger_mark', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('whole_location', sa.Boolean(), nullable=False),
    sa.Column('opened_by', sa.String(length=254), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=254), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status IN ('open', 'posted', 'cancelled')", name=op.f('ck_stock_counts_status_known')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_stock_counts_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_counts'))
    )
    with op.batch_alter_table('stock_counts', schema=None) as batch_op:
        batch_op.create_index('ix_stock_counts_location_open', ['location_id'], unique=True, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    op.create_table('stock_count_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('count_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('expected', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('counted', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('posted_difference', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('counted >= 0', name=op.f('ck_stock_count_lines_counted_not_negative')),
    sa.CheckConstraint('expected >= 0', name=op.f('ck_stock_count_lines_expected_not_negative')),
    sa.ForeignKeyConstraint(['count_id'], ['stock_counts.id'], name=op.f('fk_stock_count_lines_count_id_stock_counts')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_count_lines_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_count_lines')),
    sa.UniqueConstraint('count_id', 'product_id', name=op.f('uq_stock_count_lines_count_id'))
    )
    op.create_table('stock_count_serials',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('count_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('serial', sa.String(length=128), nullable=False),
    sa.Column('expected', sa.Boolean(), nullable=False),
    sa.Column('counted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['count_id'], ['stock_counts.id'], name=op.f('fk_stock_count_serials_count_id_stock_counts')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_count_serials_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_count_serials')),
    sa.UniqueConstraint('count_id', 'product_id', 'serial', name=op.f('uq_stock_count_serials_count_id'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index('ix_reservations_product_open', ['product_id', 'location_id'], unique=False, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('staff', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
    op.execute("UPDATE stock_movements SET reason = 'count_correction', staff = 'unknown (before 0009)' "
               "WHERE kind = 'adjustment'")
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.create_check_constraint(
            'adjustment_has_reason_and_staff', "kind <> 'adjustment' OR (reason IS NOT NULL AND staff IS NOT NULL)")


def downgrade():
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_stock_movements_adjustment_has_reason_and_staff'), type_='check')
        batch_op.drop_column('note')
        batch_op.drop_column('staff')
        batch_op.drop_column('reason')

    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_product_open', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    op.drop_table('stock_count_serials')
    op.drop_table('stock_count_lines')
    with op.batch_alter_table('stock_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_counts_location_open', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    op.drop_table('stock_counts')
