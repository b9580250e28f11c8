"""Serial numbers (issue #11): units reserved for order lines, their history, generated serials' counters.

- ``serial_units.reservation_id``: the open reservation holding a ``reserved`` or ``picked`` unit; an index
  ``(product_id, location_id, status, id)`` finds the oldest free units at a location.
- ``serial_events``: a unit's history (received, reserved, released, picked, shipped, returned, ...).
- ``serial_sequences``: per product, the next number of generated serials.

Existing rows: picked and shipped units keep their status; a picked unit gets the open reservation of its
line at its location. The open reservations of serial-tracked products reserve their units as a placement
does now: the oldest ``in_stock`` units at the reservation's location, as many as the reservation holds and
its picked units do not cover. Every existing unit gets one ``received`` event at its ``created_at`` (its
status then: its status now), so ``GET /serials/{serial}`` has a history for old units too. The downgrade
drops the new tables and column; reserved units become ``in_stock`` again (the status before).

Revision ID: 0007_core_serials
Revises: 0006_core_locations
Create Date: 2026-12-01 20:21:26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_core_serials"
down_revision = "0006_core_locations"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "serial_sequences",
        sa.Column("product_id", ID, nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_serial_sequences_product_id_products")),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_serial_sequences")),
    )
    op.create_table(
        "serial_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("location_id", ID, nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"], name=op.f("fk_serial_events_location_id_locations")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_serial_events_order_id_orders")),
        sa.ForeignKeyConstraint(["unit_id"], ["serial_units.id"], name=op.f("fk_serial_events_unit_id_serial_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_events")),
    )
    op.create_index("ix_serial_events_unit", "serial_events", ["unit_id", "id"], unique=False)
    with op.batch_alter_table("serial_units") as batch_op:
        batch_op.add_column(sa.Column("reservation_id", ID, nullable=True))
        batch_op.create_index("ix_serial_units_pick", ["product_id", "location_id", "status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_serial_units_reservation_id"), ["reservation_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_serial_units_reservation_id_reservations"), "reservations",
                                    ["reservation_id"], ["id"])
    _reserve_existing_units()
    op.execute("INSERT INTO serial_events (unit_id, at, kind, status, location_id, reference) "
               "SELECT id, created_at, 'received', status, location_id, 'before serial history (migration 0007)' "
               "FROM serial_units ORDER BY id")


def _reserve_existing_units():
    bind = op.get_bind()
    holds = bind.execute(sa.text(
        "SELECT r.id, r.line_id, r.product_id, r.location_id, r.quantity FROM reservations r "
        "JOIN products p ON p.id = r.product_id WHERE r.status = 'open' AND p.track_serials ORDER BY r.id")).all()
    for reservation_id, line_id, product_id, location_id, quantity in holds:
        picked = bind.execute(sa.text(
            "UPDATE serial_units SET reservation_id = :r WHERE line_id = :line AND location_id = :loc "
            "AND status = 'picked' AND reservation_id IS NULL"),
            {"r": reservation_id, "line": line_id, "loc": location_id}).rowcount
        left = quantity - picked
        if left <= 0:
            continue
        bind.execute(sa.text(
            "UPDATE serial_units SET status = 'reserved', line_id = :line, reservation_id = :r WHERE id IN "
            "(SELECT id FROM serial_units WHERE product_id = :p AND location_id = :loc AND status = 'in_stock' "
            "ORDER BY id LIMIT :n)"),
            {"r": reservation_id, "line": line_id, "p": product_id, "loc": location_id, "n": left})


def downgrade():
    op.execute("UPDATE serial_units SET status = 'in_stock', line_id = NULL WHERE status = 'reserved'")
    with op.batch_alter_table("serial_units") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_serial_units_reservation_id_reservations"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_serial_units_reservation_id"))
        batch_op.drop_index("ix_serial_units_pick")
        batch_op.drop_column("reservation_id")
    op.drop_index("ix_serial_events_unit", table_name="serial_events")
    op.drop_table("serial_events")
    op.drop_table("serial_sequences")
