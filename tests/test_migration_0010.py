"""0010_core_order_locale: ``orders.locale`` is added empty to the orders there are, and dropped again."""

from __future__ import annotations

import sqlalchemy as sa
from test_migrations import _at_previous_head, empty_url, run, shop  # noqa: F401  (fixtures)

from engine import schema
from engine.db import db

REVISION = "0010_core_order_locale"


def _columns(app) -> set[str]:
    with app.app_context():
        return {c["name"] for c in sa.inspect(db.engine).get_columns("orders")}


def test_0010_adds_an_empty_locale_to_existing_orders_and_drops_it_again(shop, database):  # noqa: F811
    app = shop()
    _at_previous_head(app)
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    assert "locale" not in _columns(app)
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, total, locale FROM orders ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, 2500, None), (2, 2500, None)]
        conn.execute(sa.text("UPDATE orders SET locale = 'tr-TR' WHERE id = 1"))
    assert run(app, "db", "downgrade", previous).exit_code == 0
    assert "locale" not in _columns(app)
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar() == 2
