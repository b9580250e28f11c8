"""Revision 0012_core_return_statuses: the returns stored before keep their data, their statuses mapped to
the RMA table (refunded/exchanged -> resolved, the resolution kept), and the way back."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from test_migrations import NOW, _at_previous_head, empty_url, run, shop  # noqa: F401

from engine import schema
from engine.db import db

REVISION = "0012_core_return_statuses"


def test_0012_maps_the_stored_returns_to_the_rma_statuses(shop, database):  # noqa: F811
    app = shop()
    _at_previous_head(app)
    with app.app_context():
        previous = schema._script(app).get_revision(REVISION).down_revision
    assert run(app, "db", "upgrade", previous).exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        for return_id, status, resolution in ((1, "requested", "refund"), (2, "received", "refund"),
                                              (3, "refunded", "refund"), (4, "exchanged", "exchange")):
            conn.execute(sa.text(
                "INSERT INTO returns (id, order_id, status, reason, resolution, lines, refund_amount, created_at) "
                "VALUES (:id, 1, :status, 'broken', :resolution, :lines, :amount, :now)"),
                {"id": return_id, "status": status, "resolution": resolution, "now": NOW, "amount": 1000,
                 "lines": json.dumps([{"sku": "MUG", "quantity": 1, "serials": []}])})
    result = run(app, "db", "upgrade", REVISION)
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, status, resolution, source, refund_amount, reason, lines, "
                                    "rejection_reason, received_lines FROM returns ORDER BY id")).all()
        assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[8]) for r in rows] == [
            (1, "requested", "refund", "staff", 1000, "broken", None, None),
            (2, "received", "refund", "staff", 1000, "broken", None, None),
            (3, "resolved", "refund", "staff", 1000, "broken", None, None),
            (4, "resolved", "exchange", "staff", 1000, "broken", None, None)]
        assert all((json.loads(r[6]) if isinstance(r[6], str) else r[6]) == [{"sku": "MUG", "quantity": 1,
                                                                               "serials": []}] for r in rows)
        # the new checks hold
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(sa.text("UPDATE returns SET status = 'refunded' WHERE id = 1"))
        conn.execute(sa.text("UPDATE returns SET status = 'approved' WHERE id = 1"))
        conn.execute(sa.text(
            "INSERT INTO returns (id, order_id, status, reason, resolution, lines, refund_amount, source, "
            "rejection_reason, created_at) VALUES (5, 1, 'rejected', 'x', 'refund', '[]', 0, 'customer', 'used', :now)"),
            {"now": NOW})
    # a rejected return cannot be said by the previous schema: the downgrade refuses and changes nothing
    result = run(app, "db", "downgrade", previous)
    assert result.exit_code != 0 and "rejected" in result.output, result.output
    with app.app_context(), db.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT status FROM returns WHERE id = 5")).scalar() == "rejected"
        conn.execute(sa.text("DELETE FROM returns WHERE id = 5"))
    assert run(app, "db", "downgrade", previous).exit_code == 0
    with app.app_context(), db.engine.connect() as conn:
        assert dict(conn.execute(sa.text("SELECT id, status FROM returns")).all()) == {
            1: "requested", 2: "received", 3: "refunded", 4: "exchanged"}
        assert "source" not in {c["name"] for c in sa.inspect(db.engine).get_columns("returns")}
