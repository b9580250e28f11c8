"""The data step of the migration that drops the JSON ``orders.flags`` column: copy every list into
``order_flags``, keeping the order, on a scratch database with the old column (SQLite and PostgreSQL).

The SQL is the one revision 0002 of the core runs after creating ``order_flags`` and before dropping
``orders.flags`` (tests/test_migrations.py runs the whole revision from the previous head). It keeps string flags of 1 to 100 characters, each once per order (the first
position wins); anything else in the old lists (null, numbers, non-lists) is left out. Running it
twice adds nothing.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest
from conftest import PG_URL, _psycopg_url, service_missing
from sqlalchemy import create_engine, text

import engine as engine_package
from engine.models import OrderFlag


def _revision():
    """Revision 0002 of the core, loaded from its file (revisions are not an importable package)."""
    path = Path(engine_package.__file__).parent / "migrations" / "versions" / "0002_core_money_flags_64bit.py"
    spec = importlib.util.spec_from_file_location("core_revision_0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COPY_FLAGS_SQL = _revision().COPY_FLAGS  # the SQL the migration runs

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
