"""Returns (RMA) get their own status table (issue #12, after-sales).

- ``returns.status``: ``requested`` -> ``approved`` | ``rejected`` -> ``received`` -> ``resolved``. Before,
  ``requested``, ``received``, ``refunded`` and ``exchanged``. The upgrade keeps ``requested`` and
  ``received`` (a refund that failed at the provider, waiting for its retry) and turns ``refunded`` and
  ``exchanged`` into ``resolved``: ``resolution`` already says which, and stays.
- ``returns.source``: ``staff`` or ``customer``; every existing return was opened through the API: ``staff``.
- ``received_lines`` (what arrived and where it went), ``rejection_reason``, and when the return was
  approved, rejected, received and resolved (existing resolved returns: ``resolved_at`` unknown, NULL).
- CHECK constraints on ``status``, ``resolution``, ``source`` and ``refund_amount >= 0``.

The downgrade maps ``resolved`` back to ``refunded``/``exchanged`` by ``resolution``; ``approved`` becomes
``requested`` (the old engine received those directly). It refuses while a return is ``rejected``: the
old statuses cannot say it, and dropping the rejection would let the old engine receive it.

Revision ID: 0012_core_return_statuses
Revises: 0011_core_customers_coupons
Create Date: 2026-12-01 20:19:40
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from engine.errors import SchemaError

revision = "0012_core_return_statuses"
down_revision = "0011_core_customers_coupons"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CHECKS = (
    ("status_known", "status IN ('requested', 'approved', 'rejected', 'received', 'resolved')"),
    ("resolution_known", "resolution IN ('refund', 'exchange')"),
    ("source_known", "source IN ('staff', 'customer')"),
    ("refund_amount_not_negative", "refund_amount >= 0"),
)


def upgrade():
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE returns SET status = 'resolved' WHERE status IN ('refunded', 'exchanged')"))
    with op.batch_alter_table("returns") as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), server_default="staff", nullable=False))
        batch_op.add_column(sa.Column("received_lines", JSON, nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        for name, condition in CHECKS:
            batch_op.create_check_constraint(op.f(f"ck_returns_{name}"), condition)


def downgrade():
    bind = op.get_bind()
    rejected = bind.execute(sa.text("SELECT id FROM returns WHERE status = 'rejected' ORDER BY id")).scalars().all()
    if rejected:
        raise SchemaError(f"returns {rejected} are rejected, which the previous schema cannot say: delete them "
                           "(or keep this revision) and run the downgrade again")
    with op.batch_alter_table("returns") as batch_op:
        for name, _ in CHECKS:
            batch_op.drop_constraint(op.f(f"ck_returns_{name}"), type_="check")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("received_at")
        batch_op.drop_column("rejected_at")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("received_lines")
        batch_op.drop_column("source")
    bind.execute(sa.text("UPDATE returns SET status = CASE WHEN resolution = 'exchange' THEN 'exchanged' "
                         "ELSE 'refunded' END WHERE status = 'resolved'"))
    bind.execute(sa.text("UPDATE returns SET status = 'requested' WHERE status = 'approved'"))
