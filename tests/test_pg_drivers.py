"""psycopg2, the PostgreSQL driver a shop may choose for speed (``DATABASE_URL=postgresql+psycopg2://...``).

A plain ``postgresql://`` URL picks psycopg 3, and the whole suite runs on it. psycopg2's C driver costs about a
millisecond less CPU per placement (docs/performance.md), so docs/deployment.md offers it: the suites that
decide money and stock under many threads (oversell, double charge and refund, idempotent twins, the relay's
claims, serials, returns), the placement's statement count and a full order life run again on it here, as a
separate pytest run with ``HOOKSHOP_TEST_PG_DRIVER=psycopg2`` (tests/conftest.py), so that the suite itself
is unchanged and each of its tests is the judge.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PG_URL, service_missing
from sqlalchemy import create_engine, text

from engine.config import database_uri

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["tests/test_concurrency.py", "tests/test_money_races.py", "tests/test_adjustment_races.py",
          "tests/test_returns_races.py", "tests/test_serial_races.py", "tests/test_relay_concurrency.py",
          "tests/test_statement_count.py", "tests/test_placement_lines.py", "tests/test_smoke_flow.py"]


def test_a_plain_url_picks_psycopg_3_and_a_named_driver_is_kept(tmp_path):
    assert database_uri({"DATABASE_URL": "postgresql://u@h/db"}, str(tmp_path)) == "postgresql+psycopg://u@h/db"
    assert database_uri({"DATABASE_URL": "postgres://u@h/db"}, str(tmp_path)) == "postgresql+psycopg://u@h/db"
    assert database_uri({"DATABASE_URL": "postgresql+psycopg2://u@h/db"}, str(tmp_path)) == \
        "postgresql+psycopg2://u@h/db"


def test_psycopg2_sends_an_executemany_in_pages(tmp_path):
    """psycopg2's executemany is a round trip per row (the placement's stock levels, locked meanwhile):
    hookshop asks SQLAlchemy for execute_batch; psycopg 3 pipelines executemany by itself."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (pip install -e '.[psycopg2]')")
    from engine.app import create_app
    from engine.db import db

    for url, batched in (("postgresql+psycopg2://u@127.0.0.1:1/db", True), ("postgresql://u@127.0.0.1:1/db", False)):
        app = create_app({"DATABASE_URL": url, "INSTANCE": str(tmp_path), "TESTING": True, "REDIS_URL": None})
        with app.app_context():  # no connection is made: the engine is configured, not used
            dialect = db.engine.dialect
            assert dialect.driver == ("psycopg2" if batched else "psycopg")
            if batched:
                from sqlalchemy.dialects.postgresql.psycopg2 import EXECUTEMANY_VALUES_PLUS_BATCH

                assert dialect.executemany_mode == EXECUTEMANY_VALUES_PLUS_BATCH
            db.engine.dispose()


def test_the_money_and_stock_suites_pass_on_psycopg2():
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (pip install -e '.[psycopg2]')")
    try:
        with create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1)).connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL} through psycopg2: {exc}")
    missing = [suite for suite in SUITES if not (ROOT / suite).exists()]
    assert not missing, f"renamed or removed: {missing}; update SUITES"
    env = {**os.environ, "HOOKSHOP_TEST_PG_DRIVER": "psycopg2"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-k", "postgresql", *SUITES],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, f"{summary}\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
