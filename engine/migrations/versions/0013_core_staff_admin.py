"""Staff users who can log in to the admin (issue #13).

- ``staff_users.role``: the admin's four roles ``owner``, ``accounting``, ``warehouse``,
  ``customer_service``. Before: ``admin``, ``warehouse``, ``support``, ``accounting``; the upgrade maps
  ``admin`` to ``owner`` and ``support`` to ``customer_service`` (the same people, the same rights) and adds
  a CHECK; the downgrade maps them back.
- ``staff_users.locale`` (the admin's language, ``en`` or ``tr``; existing users: ``en``) and ``active``
  (existing users: active).
- ``staff_sessions``: server-side admin sessions (the cookie carries a token, the table its SHA-256).

Existing password hashes (Werkzeug's) still verify; each is replaced by an Argon2id hash at the user's next
login.

Revision ID: 0013_core_staff_admin
Revises: 0012_core_return_statuses
Create Date: 2026-12-02 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_core_staff_admin"
down_revision = "0012_core_return_statuses"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RENAMED = {"admin": "owner", "support": "customer_service"}


def upgrade():
    for old, new in RENAMED.items():
        op.execute(sa.text("UPDATE staff_users SET role = :new WHERE role = :old").bindparams(old=old, new=new))
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("locale", sa.String(16), nullable=False, server_default="en"))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.create_check_constraint("role_known", "role IN ('owner', 'accounting', 'warehouse', 'customer_service')")
    op.create_table(
        "staff_sessions",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", BIGINT, sa.ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_staff_sessions_user_id", "staff_sessions", ["user_id"])


def downgrade():
    op.drop_index("ix_staff_sessions_user_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint("role_known", type_="check")
        batch.drop_column("active")
        batch.drop_column("locale")
    for old, new in RENAMED.items():
        op.execute(sa.text("UPDATE staff_users SET role = :old WHERE role = :new").bindparams(old=old, new=new))
