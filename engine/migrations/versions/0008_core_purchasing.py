"""Purchasing (issue #11): suppliers, purchase orders with lines, reorder rules, low-stock alerts.

- ``suppliers``; ``purchase_order_lines`` (ordered, received, damaged, short, over, unit cost);
  ``reorder_rules`` (per product and location, location null: all locations; one product-wide rule per
  product by a partial unique index); ``stock_alerts`` (one per crossing, with the recipients).
- ``purchase_orders`` loses ``product_id`` and ``quantity`` (now its lines) and gains ``number``
  (``PO-000123``), ``supplier_id``, ``draft_key`` (unique: one open draft per supplier, or per product
  without one), ``notes`` and the dates of ordering, receipt and closing.

The upgrade turns every purchase order into the same id with one line (its product and quantity; a
``received`` one received in full), keeps its status, numbers it, and gives the newest draft of each
product the product's draft key. Every product with a reorder point gets its product-wide rule, ``below``
when its available stock is at the point or under it already (so it does not fire for a standing
shortfall). The downgrade puts the first line's product and quantity back (``partially_received`` becomes
``ordered``, ``closed`` becomes ``received``) and drops the new tables.

Revision ID: 0008_core_purchasing
Revises: 0007_core_serials
Create Date: 2026-12-01 20:22:28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_core_purchasing"
down_revision = "0007_core_serials"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PRODUCT_WIDE = sa.text("location_id IS NULL")


def upgrade():
    op.create_table('suppliers',
    sa.Column('id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('lead_time_days', ID, nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('lead_time_days >= 0', name=op.f('ck_suppliers_lead_time_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppliers')),
    sa.UniqueConstraint('name', name=op.f('uq_suppliers_name'))
    )
    op.create_table('reorder_rules',
    sa.Column('id', ID, nullable=False),
    sa.Column('product_id', ID, nullable=False),
    sa.Column('location_id', ID, nullable=True),
    sa.Column('reorder_point', ID, nullable=False),
    sa.Column('reorder_quantity', ID, nullable=False),
    sa.Column('max_level', ID, nullable=True),
    sa.Column('supplier_id', ID, nullable=True),
    sa.Column('lead_time_days', ID, nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('crossed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('max_level IS NULL OR max_level > reorder_point', name=op.f('ck_reorder_rules_max_level_above_point')),
    sa.CheckConstraint('reorder_point >= 0 AND reorder_quantity >= 0 AND lead_time_days >= 0', name=op.f('ck_reorder_rules_settings_not_negative')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_reorder_rules_location_id_locations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_reorder_rules_product_id_products')),
    sa.ForeignKeyConstraint(['supplier_id'], ['suppliers.id'], name=op.f('fk_reorder_rules_supplier_id_suppliers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reorder_rules')),
    sa.UniqueConstraint('product_id', 'location_id', name=op.f('uq_reorder_rules_product_id'))
    )
    op.create_table('purchase_order_lines',
    sa.Column('id', ID, nullable=False),
    sa.Column('purchase_order_id', ID, nullable=False),
    sa.Column('product_id', ID, nullable=False),
    sa.Column('quantity', ID, nullable=False),
    sa.Column('received', ID, nullable=False),
    sa.Column('damaged', ID, nullable=False),
    sa.Column('short_quantity', ID, nullable=False),
    sa.Column('over_quantity', ID, nullable=False),
    sa.Column('unit_cost', ID, nullable=True),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_purchase_order_lines_quantity_not_negative')),
    sa.CheckConstraint('received >= 0 AND damaged >= 0 AND short_quantity >= 0 AND over_quantity >= 0', name=op.f('ck_purchase_order_lines_counts_not_negative')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_purchase_order_lines_product_id_products')),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], name=op.f('fk_purchase_order_lines_purchase_order_id_purchase_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_order_lines')),
    sa.UniqueConstraint('purchase_order_id', 'product_id', name=op.f('uq_purchase_order_lines_purchase_order_id'))
    )
    with op.batch_alter_table('purchase_order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchase_order_lines_product_id'), ['product_id'], unique=False)

    op.create_table('stock_alerts',
    sa.Column('id', ID, nullable=False),
    sa.Column('product_id', ID, nullable=False),
    sa.Column('location_id', ID, nullable=True),
    sa.Column('rule_id', ID, nullable=True),
    sa.Column('available', ID, nullable=False),
    sa.Column('reorder_point', ID, nullable=False),
    sa.Column('recipients', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('purchase_order_id', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_stock_alerts_location_id_locations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_alerts_product_id_products')),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], name=op.f('fk_stock_alerts_purchase_order_id_purchase_orders')),
    sa.ForeignKeyConstraint(['rule_id'], ['reorder_rules.id'], name=op.f('fk_stock_alerts_rule_id_reorder_rules'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_alerts'))
    )
    with op.batch_alter_table('reorder_rules', schema=None) as batch_op:
        batch_op.create_index("uq_reorder_rules_product_wide", ["product_id"], unique=True,
                              postgresql_where=PRODUCT_WIDE, sqlite_where=PRODUCT_WIDE)
    with op.batch_alter_table('stock_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stock_alerts_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('supplier_id', ID, nullable=True))
        batch_op.add_column(sa.Column('draft_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('notes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('status', existing_type=sa.VARCHAR(length=16), type_=sa.String(length=24),
                              existing_nullable=False)
    _lines_from_purchase_orders()
    _product_wide_rules()
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.create_index('ix_purchase_orders_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_purchase_orders_supplier_id'), ['supplier_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_purchase_orders_draft_key'), ['draft_key'])
        batch_op.create_unique_constraint(batch_op.f('uq_purchase_orders_number'), ['number'])
        batch_op.drop_constraint(batch_op.f('fk_purchase_orders_product_id_products'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_purchase_orders_supplier_id_suppliers'), 'suppliers',
                                    ['supplier_id'], ['id'])
        batch_op.drop_column('product_id')
        batch_op.drop_column('quantity')


def _lines_from_purchase_orders():
    bind = op.get_bind()
    lines = sa.table("purchase_order_lines", *(sa.column(c, ID) for c in (
        "id", "purchase_order_id", "product_id", "quantity", "received", "damaged", "short_quantity",
        "over_quantity")))
    orders = sa.table("purchase_orders", sa.column("id", ID), sa.column("number", sa.String),
                      sa.column("draft_key", sa.String))
    drafted = set()
    rows = bind.execute(sa.text("SELECT id, product_id, quantity, status FROM purchase_orders ORDER BY id DESC")).all()
    for po_id, product_id, quantity, status in rows:
        received = quantity if status == "received" else 0
        bind.execute(lines.insert().values(id=po_id, purchase_order_id=po_id, product_id=product_id, quantity=quantity,
                                           received=received, damaged=0, short_quantity=quantity - received,
                                           over_quantity=0))
        key = None
        if status == "draft" and product_id not in drafted:  # the newest draft of the product stays its draft
            drafted.add(product_id)
            key = f"product:{product_id}"
        bind.execute(orders.update().where(orders.c.id == po_id).values(number=f"PO-{po_id:06d}", draft_key=key))


def _product_wide_rules():
    bind = op.get_bind()
    rules = sa.table("reorder_rules", sa.column("product_id", ID), sa.column("location_id", ID),
                     sa.column("reorder_point", ID), sa.column("reorder_quantity", ID), sa.column("state", sa.String))
    rows = bind.execute(sa.text(
        "SELECT p.id, p.reorder_point, p.reorder_quantity, COALESCE(SUM(l.on_hand - l.reserved), 0) FROM products p "
        "LEFT JOIN stock_levels l ON l.product_id = p.id WHERE p.reorder_point > 0 "
        "GROUP BY p.id, p.reorder_point, p.reorder_quantity")).all()
    for product_id, point, quantity, available in rows:
        bind.execute(rules.insert().values(product_id=product_id, location_id=None, reorder_point=point,
                                           reorder_quantity=quantity,
                                           state="below" if int(available) <= point else "above"))


def downgrade():
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_id', ID, nullable=True))
        batch_op.add_column(sa.Column('quantity', ID, nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE purchase_orders SET product_id = (SELECT l.product_id FROM purchase_order_lines l WHERE "
        "l.purchase_order_id = purchase_orders.id ORDER BY l.id LIMIT 1), quantity = (SELECT l.quantity FROM "
        "purchase_order_lines l WHERE l.purchase_order_id = purchase_orders.id ORDER BY l.id LIMIT 1)"))
    bind.execute(sa.text("UPDATE purchase_orders SET status = 'ordered' WHERE status = 'partially_received'"))
    bind.execute(sa.text("UPDATE purchase_orders SET status = 'received' WHERE status = 'closed'"))
    bind.execute(sa.text("UPDATE stock_alerts SET purchase_order_id = NULL"))
    bind.execute(sa.text("DELETE FROM purchase_order_lines WHERE purchase_order_id IN "
                         "(SELECT id FROM purchase_orders WHERE product_id IS NULL)"))
    bind.execute(sa.text("DELETE FROM purchase_orders WHERE product_id IS NULL"))  # no lines: nothing to keep
    with op.batch_alter_table('purchase_orders', schema=None) as batch_op:
        batch_op.alter_column('product_id', existing_type=ID, nullable=False)
        batch_op.alter_column('quantity', existing_type=ID, nullable=False)
        batch_op.drop_constraint(batch_op.f('fk_purchase_orders_supplier_id_suppliers'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_purchase_orders_product_id_products'), 'products',
                                    ['product_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('uq_purchase_orders_number'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_purchase_orders_draft_key'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_purchase_orders_supplier_id'))
        batch_op.drop_index('ix_purchase_orders_status_id')
        batch_op.alter_column('status', existing_type=sa.String(length=24), type_=sa.VARCHAR(length=16),
                              existing_nullable=False)
        for column in ('closed_at', 'received_at', 'ordered_at', 'notes', 'draft_key', 'supplier_id', 'number'):
            batch_op.drop_column(column)
    op.drop_table('stock_alerts')
    op.drop_table('purchase_order_lines')
    op.drop_table('reorder_rules')
    op.drop_table('suppliers')
