"""The data step of the migration that drops the JSON ``orders.flags`` column: copy every list into
``order_flags``, keeping the order, on a scratch database with the old column (SQLite and PostgreSQL).

The SQL below is what the schema migration runs after creating ``order_flags`` and before dropping
``orders.flags``. It keeps string flags of 1 to 100 characters, each once per order (the first
position wins); anything else in the old lists (null, numbers, non-lists) is left out. Running it
twice adds nothing.
"""

from __future__ import annotations

import uuid

import pytest
from conftest import PG_URL, _psycopg_url, service_missing
from sqlalchemy import create_engine, text

from engine.models import OrderFlag

COPY_FLAGS_SQL = {
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

OLD_FLAGS = {
    1: '["gift", "coupon:welcome", "repeat"]',
    2: "[]",
    3: None,  # SQL NULL
    4: "null",  # JSON null
    5: '["vip", "vip"]',
    6: '[7, "b2b", "", null, ["nested"]]',
    7: '["' + "x" * 101 + '", "ok"]',
    8: '"gift"',  # a string, not a list
}
EXPECTED = [(1, "gift", 0), (1, "coupon:welcome", 1), (1, "repeat", 2), (5, "vip", 0), (6, "b2b", 1), (7, "ok", 1)]


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch(request, tmp_path):
    """A connection to an empty scratch database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/old.sqlite")
        yield engine, "sqlite"
        engine.dispose()
        return
    schema = f"hs_flags_copy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL}: {exc}")
    engine = create_engine(_psycopg_url(PG_URL), connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine, "postgresql"
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_copy_json_flags_into_order_flags(scratch):
    engine, kind = scratch
    json_type = "JSONB" if kind == "postgresql" else "JSON"
    with engine.begin() as conn:
        # the old shape of orders, as far as the copy reads it; order_flags as the model defines it
        conn.execute(text(f"CREATE TABLE orders (id INTEGER PRIMARY KEY, status VARCHAR(16), flags {json_type})"))
        OrderFlag.__table__.create(conn)
        conn.execute(text("INSERT INTO orders (id, status, flags) VALUES (:id, 'placed', :flags)"),
                     [{"id": oid, "flags": flags} for oid, flags in OLD_FLAGS.items()])
        if kind == "sqlite":  # text the old JSON column could hold on SQLite, never on PostgreSQL
            conn.execute(text("INSERT INTO orders (id, status, flags) VALUES (9, 'placed', 'not json')"))
    for _ in range(2):  # a second run (a retried migration) adds nothing
        with engine.begin() as conn:
            conn.execute(text(COPY_FLAGS_SQL[kind]))
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT order_id, flag, position FROM order_flags "
                                     "ORDER BY order_id, position")).all()
        assert [tuple(r) for r in rows] == EXPECTED
