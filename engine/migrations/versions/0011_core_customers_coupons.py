"""Customer profiles (B2B, language, statistics per currency, merge) and coupons managed by API and CLI (issue #12).

- ``customers``: ``company``, ``tax_id`` (+ ``tax_id_checked``), ``billing_address``, ``notes``, ``locale``,
  ``vip_by_staff`` (staff's word over the rule), ``orders_by_currency``, ``first_order_at``, ``last_order_at``,
  ``merged_into_id`` / ``merged_at`` (a merged duplicate is a tombstone pointing to the survivor).
- ``order_lines.gift``: a zero-priced thank-you line (a CHECK holds ``unit_price = 0``).
- ``coupons`` (code unique case-insensitively through ``code_key``) and ``coupon_uses``.

The upgrade computes ``orders_by_currency`` and the first and last order dates from the orders, so existing
profiles keep their statistics (spending per currency exists since 0005). The ``COUPONS`` setting needs no
copy: it stays a fallback for codes the table does not hold. The downgrade drops what the upgrade added
(coupons created through the API are lost). The new NOT NULL columns keep their server defaults, so rows
written by SQL that predates them (older tools, older tests) still insert.

Revision ID: 0011_core_customers_coupons
Revises: 0010_core_order_locale
Create Date: 2026-12-01 20:18:30
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_core_customers_coupons"
down_revision = "0010_core_order_locale"
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _create_coupons():
    op.create_table(
        "coupons",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", BigInt, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_limit", BigInt, nullable=True),
        sa.Column("per_customer_limit", BigInt, nullable=True),
        sa.Column("used_count", BigInt, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind <> 'fixed_amount' OR currency IS NOT NULL",
                           name=op.f("ck_coupons_fixed_amount_has_currency")),
        sa.CheckConstraint("kind <> 'percentage' OR value <= 100", name=op.f("ck_coupons_percentage_at_most_100")),
        sa.CheckConstraint("kind IN ('percentage', 'fixed_amount', 'free_shipping')",
                           name=op.f("ck_coupons_kind_known")),
        sa.CheckConstraint("usage_limit IS NULL OR used_count <= usage_limit",
                           name=op.f("ck_coupons_used_within_limit")),
        sa.CheckConstraint("used_count >= 0", name=op.f("ck_coupons_used_not_negative")),
        sa.CheckConstraint("value >= 0", name=op.f("ck_coupons_value_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code_key", name=op.f("uq_coupons_code_key")),
    )
    op.create_table(
        "coupon_uses",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("coupon_id", BigInt, nullable=False),
        sa.Column("order_id", BigInt, nullable=False),
        sa.Column("customer_id", BigInt, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"], name=op.f("fk_coupon_uses_coupon_id_coupons")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_coupon_uses_customer_id_customers")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_coupon_uses_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_uses")),
        sa.UniqueConstraint("order_id", name=op.f("uq_coupon_uses_order_id")),
    )
    with op.batch_alter_table("coupon_uses") as batch_op:
        batch_op.create_index("ix_coupon_uses_coupon_customer", ["coupon_id", "customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupon_uses_customer_id"), ["customer_id"], unique=False)


def _copy_statistics():
    """orders_by_currency and the first and last order dates of every profile, from its orders."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE customers SET first_order_at = (SELECT MIN(created_at) FROM orders WHERE orders.customer_id = "
        "customers.id), last_order_at = (SELECT MAX(created_at) FROM orders WHERE orders.customer_id = customers.id)"))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for customer_id, currency, count in bind.execute(sa.text(
            "SELECT customer_id, currency, COUNT(*) FROM orders WHERE status <> 'cancelled' "
            "GROUP BY customer_id, currency")):
        counts[customer_id][currency] = int(count)
    customers = sa.table("customers", sa.column("id", sa.BigInteger), sa.column("orders_by_currency", JSON))
    for customer_id, amounts in counts.items():
        bind.execute(customers.update().where(customers.c.id == customer_id).values(orders_by_currency=amounts))


def upgrade():
    _create_coupons()
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(sa.Column("vip_by_staff", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("company", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("tax_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tax_id_checked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("billing_address", JSON, nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("locale", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("orders_by_currency", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("first_order_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", BigInt, nullable=True))
        batch_op.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_customers_merged_into_id", ["merged_into_id", "id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_customers_merged_into_id_customers"), "customers",
                                    ["merged_into_id"], ["id"])
    with op.batch_alter_table("order_lines") as batch_op:
        batch_op.add_column(sa.Column("gift", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("order_lines") as batch_op:
        batch_op.create_check_constraint(op.f("ck_order_lines_gift_line_free"), "NOT gift OR unit_price = 0")
    _copy_statistics()


def downgrade():
    with op.batch_alter_table("order_lines") as batch_op:
        batch_op.drop_constraint(op.f("ck_order_lines_gift_line_free"), type_="check")
        batch_op.drop_column("gift")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_customers_merged_into_id_customers"), type_="foreignkey")
        batch_op.drop_index("ix_customers_merged_into_id")
        for column in ("merged_at", "merged_into_id", "last_order_at", "first_order_at", "orders_by_currency",
                       "locale", "notes", "billing_address", "tax_id_checked", "tax_id", "company", "vip_by_staff"):
            batch_op.drop_column(column)
    with op.batch_alter_table("coupon_uses") as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupon_uses_customer_id"))
        batch_op.drop_index("ix_coupon_uses_coupon_customer")
    op.drop_table("coupon_uses")
    op.drop_table("coupons")
