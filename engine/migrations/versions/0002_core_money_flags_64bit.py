"""Money under one lock, flags as rows, 64-bit integers (issue #9).

- ``refunds``: a refund is a row, reserved ``pending`` before the provider is called; the refunds
  recorded so far in ``payments.data["refunds"]`` are copied into it.
- ``orders.claim``, ``claim_token``, ``claim_expires_at``: pay, ship and cancel claim the order.
- CHECK constraints: per order ``refunded_total <= paid_total`` and no negative money; per payment
  ``refunded_amount <= amount``. A database whose rows break them (the concurrency bugs this
  release fixes could refund more than was paid) is refused with the list of orders to correct.
- ``order_flags``: the flags of ``orders.flags`` (JSON) copied into rows, then the column dropped;
  ``ix_orders_channel_id`` for ``GET /orders?channel=``.
- PostgreSQL: every INTEGER column becomes BIGINT and every id sequence ``AS bigint``. SQLite's
  INTEGER is 64-bit already: nothing to widen there.

Revision ID: 0002_core_money_flags_64bit
Revises: 0001_core_baseline
Create Date: 2026-12-01 18:20:00
"""

import json

import sqlalchemy as sa
from alembic import op

from engine.db import BigInt
from engine.errors import SchemaError
from engine.schema import widen_integers

revision = "0002_core_money_flags_64bit"
down_revision = "0001_core_baseline"
branch_labels = None
depends_on = None

# the INTEGER columns of the baseline, widened to BIGINT on PostgreSQL
WIDENED = {
    "api_keys": ["id"],
    "customers": ["id", "order_count", "total_spent"],
    "idempotency_records": ["id", "api_key_id", "status_code"],
    "inbox_records": ["id"],
    "locations": ["id"],
    "order_events": ["id", "order_id"],
    "order_lines": ["id", "order_id", "product_id", "quantity", "unit_price", "backordered", "picked_quantity",
                    "returned_quantity"],
    "orders": ["id", "customer_id", "subtotal", "discount_total", "shipping_total", "tax_total", "total",
               "paid_total", "refunded_total", "replacement_for_id"],
    "outbox_events": ["id", "attempts"],
    "payments": ["id", "order_id", "amount", "refunded_amount", "fee"],
    "products": ["id", "price", "reorder_point", "reorder_quantity", "weight_grams", "unit_cost"],
    "purchase_orders": ["id", "product_id", "quantity"],
    "reservations": ["id", "order_id", "line_id", "product_id", "location_id", "quantity"],
    "returns": ["id", "order_id", "refund_amount", "replacement_order_id"],
    "serial_units": ["id", "product_id", "location_id", "line_id"],
    "shipments": ["id", "order_id", "price"],
    "staff_users": ["id"],
    "stock_levels": ["id", "product_id", "location_id", "on_hand", "reserved"],
    "stock_movements": ["id", "product_id", "location_id", "quantity", "order_id"],
}

ORDER_CHECKS = {
    "total_not_negative": "total >= 0",
    "paid_not_negative": "paid_total >= 0",
    "refunded_not_negative": "refunded_total >= 0",
    "refunded_within_paid": "refunded_total <= paid_total",
}
PAYMENT_CHECKS = {
    "amount_not_negative": "amount >= 0",
    "refunded_not_negative": "refunded_amount >= 0",
    "refunded_within_amount": "refunded_amount <= amount",
}

COPY_FLAGS = {
    "postgresql": """
INSERT INTO order_flags (order_id, flag, position)
SELECT o.id, e.value #>> '{}', e.ordinality - 1
FROM orders AS o
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(o.flags::jsonb) = 'array' THEN o.flags::jsonb ELSE '[]'::jsonb END
) WITH ORDINALITY AS e(value, ordinality)
WHERE jsonb_typeof(e.value) = 'string' AND length(e.value #>> '{}') BETWEEN 1 AND 100
ORDER BY o.id, e.ordinality
ON CONFLICT (order_id, flag) DO NOTHING
""",
    "sqlite": """
INSERT INTO order_flags (order_id, flag, position)
SELECT o.id, e.value, e.key
FROM orders AS o, json_each(
    CASE WHEN json_valid(o.flags) THEN CASE WHEN json_type(o.flags) = 'array' THEN o.flags END END
) AS e
WHERE e.type = 'text' AND length(e.value) BETWEEN 1 AND 100
ORDER BY o.id, e.key
ON CONFLICT (order_id, flag) DO NOTHING
""",
}


def _dialect() -> str:
    return op.get_bind().dialect.name


def _refuse_broken_money() -> None:
    """Name the rows the new constraints would refuse, rather than fail on the first one."""
    bind = op.get_bind()
    orders = bind.execute(sa.text(
        "SELECT id FROM orders WHERE total < 0 OR paid_total < 0 OR refunded_total < 0 "
        "OR refunded_total > paid_total ORDER BY id")).scalars().all()
    payments = bind.execute(sa.text(
        "SELECT id FROM payments WHERE amount < 0 OR refunded_amount < 0 OR refunded_amount > amount "
        "ORDER BY id")).scalars().all()
    if orders or payments:
        raise SchemaError(
            "this upgrade adds database checks that money never goes negative and refunds never exceed what was "
            f"paid, and these rows break them: orders {list(orders)[:50]}, payments {list(payments)[:50]}. "
            "Look at each order's timeline, correct the totals (e.g. record the over-refund with staff), then "
            "run `hookshop db upgrade` again. Nothing was changed.")


def _copy_refunds() -> None:
    """The refunds kept in ``payments.data["refunds"]`` become rows (the JSON list stays as it was)."""
    bind = op.get_bind()
    refunds = sa.table("refunds", sa.column("order_id"), sa.column("payment_id"), sa.column("amount"),
                       sa.column("status"), sa.column("reference"), sa.column("reason"),
                       sa.column("created_at"), sa.column("settled_at"))
    rows = []
    seen = set()
    for payment_id, order_id, data, updated_at in bind.execute(sa.text(
            "SELECT id, order_id, data, updated_at FROM payments ORDER BY id")).all():
        data = json.loads(data) if isinstance(data, str) else (data or {})
        for item in (data or {}).get("refunds") or []:
            amount, reference = int(item.get("amount") or 0), item.get("reference")
            if amount <= 0 or (payment_id, reference) in seen:
                continue
            seen.add((payment_id, reference))
            rows.append({"order_id": order_id, "payment_id": payment_id, "amount": amount,
                         "status": "failed" if item.get("status") == "failed" else "succeeded",
                         "reference": reference, "reason": "", "created_at": updated_at, "settled_at": updated_at})
    if rows:
        op.bulk_insert(refunds, rows)


def upgrade():
    _refuse_broken_money()
    widen_integers(WIDENED)

    op.create_table(
        "refunds",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("order_id", BigInt, nullable=False),
        sa.Column("payment_id", BigInt, nullable=False),
        sa.Column("return_id", BigInt, nullable=True),
        sa.Column("amount", BigInt, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.ForeignKeyConstraint(["return_id"], ["returns.id"], name=op.f("fk_refunds_return_id_returns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("payment_id", "reference", name=op.f("uq_refunds_payment_id")),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id", "id"])
    op.create_index("uq_refunds_one_pending_per_payment", "refunds", ["payment_id"], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    _copy_refunds()

    op.create_table(
        "order_flags",
        sa.Column("order_id", BigInt, nullable=False),
        sa.Column("flag", sa.String(length=100), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_flags_order_id_orders"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id", "flag", name=op.f("pk_order_flags")),
    )
    op.create_index("ix_order_flags_flag_order_id", "order_flags", ["flag", "order_id"])
    op.execute(COPY_FLAGS[_dialect()])

    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("claim", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("flags")
        batch_op.create_index("ix_orders_channel_id", ["channel", "id"])
        for name, condition in ORDER_CHECKS.items():
            batch_op.create_check_constraint(name, condition)
    with op.batch_alter_table("payments") as batch_op:
        for name, condition in PAYMENT_CHECKS.items():
            batch_op.create_check_constraint(name, condition)


def downgrade():
    with op.batch_alter_table("payments") as batch_op:
        for name in PAYMENT_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_payments_{name}"), type_="check")
    with op.batch_alter_table("orders") as batch_op:
        for name in ORDER_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_orders_{name}"), type_="check")
        batch_op.drop_index("ix_orders_channel_id")
        batch_op.drop_column("claim_expires_at")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("claim")
        batch_op.add_column(sa.Column("flags", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
                                      nullable=False, server_default="[]"))
    bind = op.get_bind()
    flags: dict[int, list[str]] = {}
    for order_id, flag in bind.execute(sa.text("SELECT order_id, flag FROM order_flags ORDER BY order_id, position")):
        flags.setdefault(order_id, []).append(flag)
    for order_id, values in flags.items():
        bind.execute(sa.text("UPDATE orders SET flags = :flags WHERE id = :id"),
                     {"flags": json.dumps(values), "id": order_id})
    op.drop_index("ix_order_flags_flag_order_id", table_name="order_flags")
    op.drop_table("order_flags")
    op.drop_index("uq_refunds_one_pending_per_payment", table_name="refunds")
    op.drop_index("ix_refunds_order_id", table_name="refunds")
    op.drop_table("refunds")  # payments.data["refunds"] still lists the refunds made before the upgrade
    widen_integers(WIDENED, to="INTEGER")
