"""Locations as paths, and transfers between them (issue #11, warehouse).

- ``locations.kind`` (``warehouse``, ``bin``, ``receiving``, ``quarantine``, ``staging``), ``parent_id``
  (the location one path segment up; NULL for a warehouse), ``pickable`` (only pickable locations give
  stock to orders) and ``created_at``; CHECKs: a known kind, a warehouse is exactly a location without a
  parent, a quarantine location is never pickable.
- ``stock_transfers``: one row per transfer, linking its two movements (product, from, to, quantity,
  serials, reference).

The upgrade keeps every existing location working: a code without ``/`` (``MAIN``, ``BACK``) becomes a
pickable warehouse; a code with ``/`` (received as ``MAIN/A-1`` before) becomes a pickable bin under the
location of its path minus the last segment, which is created (as a warehouse for the first segment,
a bin below it) when it does not exist yet. Existing codes are kept as they are, even those the new path
format would refuse (lower case): they stay reachable by their exact code. The downgrade drops the
columns and the table (the ancestors the upgrade created stay, as plain locations).

Revision ID: 0006_core_locations
Revises: 0005_core_customer_spent
Create Date: 2026-12-01 20:18:00
"""

from datetime import UTC, datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_core_locations"
down_revision = "0005_core_customer_spent"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def upgrade():
    op.create_table(
        "stock_transfers",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("product_id", BigInt, nullable=False),
        sa.Column("from_location_id", BigInt, nullable=False),
        sa.Column("to_location_id", BigInt, nullable=False),
        sa.Column("quantity", BigInt, nullable=False),
        sa.Column("serials", JSON, nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("from_location_id <> to_location_id", name=op.f("ck_stock_transfers_two_locations")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_stock_transfers_quantity_positive")),
        sa.ForeignKeyConstraint(["from_location_id"], ["locations.id"],
                                name=op.f("fk_stock_transfers_from_location_id_locations")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_stock_transfers_product_id_products")),
        sa.ForeignKeyConstraint(["to_location_id"], ["locations.id"],
                                name=op.f("fk_stock_transfers_to_location_id_locations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_transfers")),
    )
    op.create_index(op.f("ix_stock_transfers_product_id"), "stock_transfers", ["product_id"], unique=False)

    with op.batch_alter_table("locations") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="warehouse"))
        batch_op.add_column(sa.Column("parent_id", BigInt, nullable=True))
        batch_op.add_column(sa.Column("pickable", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    _place_existing_locations(op.get_bind())
    with op.batch_alter_table("locations") as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("pickable", server_default=None)
        batch_op.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index(batch_op.f("ix_locations_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_locations_parent_id_locations"), "locations", ["parent_id"], ["id"])
        batch_op.create_check_constraint(
            "kind_known", sa.text("kind IN ('warehouse', 'bin', 'receiving', 'quarantine', 'staging')"))
        batch_op.create_check_constraint(
            "warehouse_is_top_level", sa.text("(kind = 'warehouse' AND parent_id IS NULL) OR "
                                              "(kind <> 'warehouse' AND parent_id IS NOT NULL)"))
        batch_op.create_check_constraint("quarantine_not_pickable", sa.text("kind <> 'quarantine' OR NOT pickable"))


def _place_existing_locations(bind) -> None:
    """Every existing code keeps its row: ``A`` a warehouse, ``A/B`` a bin under ``A`` (made if missing)."""
    locations = sa.table("locations", sa.column("id", BigInt), sa.column("code", sa.String(64)),
                         sa.column("name", sa.String(200)), sa.column("kind", sa.String(16)),
                         sa.column("parent_id", BigInt), sa.column("pickable", sa.Boolean),
                         sa.column("created_at", sa.DateTime(timezone=True)))
    bind.execute(locations.update().values(created_at=NOW))
    ids = dict(bind.execute(sa.select(locations.c.code, locations.c.id)).all())
    for code in sorted(ids, key=lambda c: (c.count("/"), c)):
        if "/" not in code:
            continue
        segments = code.split("/")
        parent = None
        for depth in range(1, len(segments)):
            prefix = "/".join(segments[:depth])
            if prefix not in ids:
                bind.execute(locations.insert().values(
                    code=prefix, name=prefix, kind="warehouse" if depth == 1 else "bin", parent_id=parent,
                    pickable=True, created_at=NOW))
                ids[prefix] = bind.execute(sa.select(locations.c.id).where(locations.c.code == prefix)).scalar_one()
            parent = ids[prefix]
        bind.execute(locations.update().where(locations.c.id == ids[code]).values(kind="bin", parent_id=parent))


def downgrade():
    with op.batch_alter_table("locations") as batch_op:
        batch_op.drop_constraint(op.f("ck_locations_quarantine_not_pickable"), type_="check")
        batch_op.drop_constraint(op.f("ck_locations_warehouse_is_top_level"), type_="check")
        batch_op.drop_constraint(op.f("ck_locations_kind_known"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_locations_parent_id_locations"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_locations_parent_id"))
        batch_op.drop_column("created_at")
        batch_op.drop_column("pickable")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("kind")
    op.drop_index(op.f("ix_stock_transfers_product_id"), table_name="stock_transfers")
    op.drop_table("stock_transfers")
