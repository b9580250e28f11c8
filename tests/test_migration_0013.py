"""Revision 0013_core_staff_admin: staff users stored before keep their accounts, their roles renamed to the
admin's (admin -> owner, support -> customer_service), English and active; and the way back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_migrations import NOW, _at_previous_head, empty_url, run, shop  # noqa: F401

from engine import schema
from engine.db import db

REVISION = "0013_core_staff_admin"


def test_0013_renames_the_roles_and_adds_sessions(shop, database):  # noqa: F811
    app = shop()
    _at_previous_head(app)
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        for user_id, role in ((1, "admin"), (2, "warehouse"), (3, "support"), (4, "accounting")):
            conn.execute(sa.text("INSERT INTO staff_users (id, email, role, password_hash, created_at) "
                                 "VALUES (:id, :email, :role, 'pbkdf2:sha256:1$x$y', :now)"),
                         {"id": user_id, "email": f"u{user_id}@shop.example", "role": role, "now": NOW})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, role, locale, active, password_hash FROM staff_users ORDER BY id")).all()
        assert [(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows] == [
            (1, "owner", "en", True, "pbkdf2:sha256:1$x$y"), (2, "warehouse", "en", True, "pbkdf2:sha256:1$x$y"),
            (3, "customer_service", "en", True, "pbkdf2:sha256:1$x$y"), (4, "accounting", "en", True, "pbkdf2:sha256:1$x$y")]
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text("UPDATE staff_users SET role = 'admin' WHERE id = 1"))
        conn.execute(sa.text("INSERT INTO staff_sessions (token_hash, user_id, created_at, last_seen_at) "
                             "VALUES (:h, 1, :now, :now)"), {"h": "a" * 64, "now": NOW})
    result = run(app, "db", "downgrade", previous)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        assert dict(conn.execute(sa.text("SELECT id, role FROM staff_users")).all()) == {
            1: "admin", 2: "warehouse", 3: "support", 4: "accounting"}
        assert "staff_sessions" not in sa.inspect(conn).get_table_names()
    assert run(app, "db", "upgrade", "heads").exit_code == 0
