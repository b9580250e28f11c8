"""Schema migrations (Alembic through Flask-Migrate): every branch from empty to head and back, the check,
the adoption of a database made before migrations, and a third-party plugin's own branch.

Each test works on its own empty database: a SQLite file, or a private PostgreSQL schema.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import uuid
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from conftest import PG_URL, _psycopg_url, service_missing
from flask.cli import FlaskGroup, ScriptInfo

from engine import schema
from engine.app import create_app
from engine.cli import HookshopGroup, cli
from engine.db import db
from engine.errors import SchemaError

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_BRANCHES = ("core", "accounting_export", "carrier_generic", "channel_webhook", "notify_email",
                    "payments_stripe", "crm_salesforce")
DATA = Path(__file__).with_name("data")


# ------------------------------------------------------------------------------------------ fixtures


def _private_pg_schema(prefix: str):
    """A fresh PostgreSQL schema: (its URL, a function that drops it)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = sa.create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001
        service_missing(f"PostgreSQL is not reachable at {PG_URL}: {exc}")

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    url = _psycopg_url(PG_URL)
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{name}", drop


@pytest.fixture
def empty_url(database, tmp_path):
    """An empty database of its own: a SQLite file or a fresh PostgreSQL schema (dropped after)."""
    if database == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.sqlite"
        return
    url, drop = _private_pg_schema("hs_mig")
    yield url
    drop()


@pytest.fixture
def shop(empty_url, tmp_path):
    """``shop(**config)``: an app on the empty database (not migrated); disposed after the test."""
    apps = []

    def build(**config):
        app = create_app({"DATABASE_URL": empty_url, "INSTANCE": str(tmp_path / "instance"), "REDIS_URL": None,
                          "TESTING": True, **config})
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


THIRD_PARTY = {
    "acme_wishlist/__init__.py": '''
        """A third-party plugin that owns a table and ships its migrations by the convention."""
        from engine import hookimpl

        from . import models  # noqa: F401


        @hookimpl
        def plugin_setup(app):
            return None
    ''',
    "acme_wishlist/models.py": '''
        from sqlalchemy import ForeignKey, Integer, String
        from sqlalchemy.orm import Mapped, mapped_column

        from engine.db import db


        class Wish(db.Model):
            __tablename__ = "acme_wishlist_wishes"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"))
            note: Mapped[str | None] = mapped_column(String(200))
    ''',
    "acme_wishlist/migrations/versions/0001_acme_wishlist_baseline.py": '''
        """The wishes table."""
        import sqlalchemy as sa
        from alembic import op

        revision = "0001_acme_wishlist_baseline"
        down_revision = None
        branch_labels = ("acme_wishlist",)
        depends_on = "0001_core_baseline"


        def upgrade():
            op.create_table(
                "acme_wishlist_wishes",
                sa.Column("id", sa.Integer(), nullable=False),
                sa.Column("order_id", sa.Integer(), nullable=False),
                sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_acme_wishlist_wishes_order_id_orders")),
                sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_wishlist_wishes")),
            )


        def downgrade():
            op.drop_table("acme_wishlist_wishes")
    ''',
    "acme_wishlist/migrations/versions/0002_acme_wishlist_note.py": '''
        """A note on each wish."""
        import sqlalchemy as sa
        from alembic import op

        revision = "0002_acme_wishlist_note"
        down_revision = "0001_acme_wishlist_baseline"
        branch_labels = None
        depends_on = None


        def upgrade():
            with op.batch_alter_table("acme_wishlist_wishes") as batch_op:
                batch_op.add_column(sa.Column("note", sa.String(length=200), nullable=True))


        def downgrade():
            with op.batch_alter_table("acme_wishlist_wishes") as batch_op:
                batch_op.drop_column("note")
    ''',
    "acme_rebuild/__init__.py": '''
        """A plugin whose second revision rebuilds a referenced table with rows in it (SQLite batch mode)."""
    ''',
    "acme_rebuild/migrations/versions/0001_acme_rebuild_baseline.py": '''
        import sqlalchemy as sa
        from alembic import op

        revision = "0001_acme_rebuild_baseline"
        down_revision = None
        branch_labels = ("acme_rebuild",)
        depends_on = "0001_core_baseline"


        def upgrade():
            parents = op.create_table("acme_rebuild_parents", sa.Column("id", sa.Integer(), primary_key=True),
                                      sa.Column("code", sa.String(10), nullable=False))
            children = op.create_table("acme_rebuild_children", sa.Column("id", sa.Integer(), primary_key=True),
                                       sa.Column("parent_id", sa.Integer(), sa.ForeignKey("acme_rebuild_parents.id"),
                                                 nullable=False))
            op.bulk_insert(parents, [{"id": 1, "code": "A"}, {"id": 2, "code": "B"}])
            op.bulk_insert(children, [{"id": 1, "parent_id": 1}, {"id": 2, "parent_id": 2}])


        def downgrade():
            op.drop_table("acme_rebuild_children")
            op.drop_table("acme_rebuild_parents")
    ''',
    "acme_rebuild/migrations/versions/0002_acme_rebuild_longer_code.py": '''
        import sqlalchemy as sa
        from alembic import op

        revision = "0002_acme_rebuild_longer_code"
        down_revision = "0001_acme_rebuild_baseline"
        branch_labels = None
        depends_on = None


        def upgrade():
            with op.batch_alter_table("acme_rebuild_parents") as batch_op:  # SQLite: copies the table
                batch_op.alter_column("code", type_=sa.String(40), existing_nullable=False)


        def downgrade():
            with op.batch_alter_table("acme_rebuild_parents") as batch_op:  # SQLite: copies the table
                batch_op.alter_column("code", type_=sa.String(10), existing_nullable=False)
    ''',
    "acme_bigid/__init__.py": '''
        """A plugin whose model has a 64-bit id that its first revision made 32-bit (as the core's were)."""
        from sqlalchemy import BigInteger, Integer
        from sqlalchemy.orm import Mapped, mapped_column

        from engine.db import db


        class Ticket(db.Model):
            __tablename__ = "acme_bigid_tickets"
            id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    ''',
    "acme_bigid/migrations/versions/0001_acme_bigid_baseline.py": '''
        import sqlalchemy as sa
        from alembic import op

        revision = "0001_acme_bigid_baseline"
        down_revision = None
        branch_labels = ("acme_bigid",)
        depends_on = "0001_core_baseline"


        def upgrade():
            op.create_table("acme_bigid_tickets", sa.Column("id", sa.Integer(), nullable=False),
                            sa.PrimaryKeyConstraint("id", name=op.f("pk_acme_bigid_tickets")))


        def downgrade():
            op.drop_table("acme_bigid_tickets")
    ''',
    "acme_unmigrated/__init__.py": '''
        """A third-party plugin that owns a table but ships no migrations (yet)."""
        from sqlalchemy import String
        from sqlalchemy.orm import Mapped, mapped_column

        from engine.db import db


        class Note(db.Model):
            __tablename__ = "acme_unmigrated_notes"
            id: Mapped[int] = mapped_column(primary_key=True)
            text: Mapped[str] = mapped_column(String(100))
    ''',
}


@pytest.fixture(scope="module")
def third_party(tmp_path_factory):
    """Plugin packages outside the tree, imported once; their tables leave the metadata after the module
    (an app that does not register them ignores their models anyway)."""
    import importlib

    root = tmp_path_factory.mktemp("site")
    for name, text in THIRD_PARTY.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    sys.path.insert(0, str(root))
    before = set(db.metadata.tables)
    try:
        yield {name: importlib.import_module(name) for name in ("acme_wishlist", "acme_unmigrated", "acme_rebuild",
                                                                "acme_bigid")}
    finally:
        sys.path.remove(str(root))
        for name in set(db.metadata.tables) - before:  # later tests that walk the metadata never see them
            db.metadata.remove(db.metadata.tables[name])


def run(app, *args):
    """``hookshop <args>`` through click's runner, on this app."""
    return app.test_cli_runner().invoke(args=list(args))


def assert_at_head(current: str) -> None:
    """``hookshop db current`` says every bundled branch is at its head."""
    lines = dict(line.split(": ", 1) for line in current.splitlines() if ": " in line)
    for branch in BUNDLED_BRANCHES:
        assert lines.get(branch, "").endswith("(head)"), current


def tables_of(app) -> set[str]:
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def load_wave1(app, database) -> None:
    """The schema `hookshop init` made before migrations (create_all and the journal's listeners)."""
    text = (DATA / f"wave1_schema_{database}.sql").read_text()
    statements = [part.strip() for part in text.split("\n-- ;\n")]
    statements = [s for s in statements if s and not all(line.startswith("--") for line in s.splitlines())]
    with app.app_context(), db.engine.connect() as conn:
        raw = conn.connection.driver_connection  # the statements as stored: no parameter escaping
        cursor = raw.cursor()  # a DB-API cursor: psycopg 3, psycopg2 (HOOKSHOP_TEST_PG_DRIVER) and sqlite3
        for statement in statements:
            cursor.execute("\n".join(line for line in statement.splitlines() if not line.startswith("--")))
        raw.commit()


# ------------------------------------------------------------------------------- from empty to head


def test_upgrade_builds_every_branch_from_an_empty_database(shop):
    app = shop()
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "applied 0001_core_baseline" in result.output
    with app.app_context():
        owned = set(schema.owned_tables(app))
    assert owned and owned <= tables_of(app)
    assert {"orders", "accounting_export_postings", "payments_stripe_operations"} <= owned
    assert_at_head(run(app, "db", "current").output)
    check = run(app, "db", "check")
    assert check.exit_code == 0 and "agree" in check.output, check.output
    again = run(app, "init")
    assert again.exit_code == 0 and "applied" not in again.output, again.output


def _structure(app, tables) -> dict:
    """What the database says about each table: columns, keys, indexes, constraints."""
    with app.app_context():
        insp = sa.inspect(db.engine)
        found = {}
        for table in sorted(tables):
            found[table] = {
                # by name: a revision adds a column at the end, create_all puts it where the model has it
                "columns": sorted((c["name"], str(c["type"]), c["nullable"], c.get("default"))
                                  for c in insp.get_columns(table)),
                "pk": insp.get_pk_constraint(table),
                "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                               tuple(fk["referred_columns"]), tuple(sorted(fk.get("options", {}).items())))
                              for fk in insp.get_foreign_keys(table)),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in insp.get_indexes(table)),
                "uniques": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
                "checks": sorted((c["name"], " ".join(c["sqltext"].split())) for c in insp.get_check_constraints(table)),
            }
        return found


def test_the_migrations_build_the_schema_create_all_would_build(shop, tmp_path, database):
    """Stricter than the check: CHECK constraints, deferrable foreign keys and defaults included."""
    migrated = shop()
    schema.upgrade(migrated)
    with migrated.app_context():
        tables = set(schema.owned_tables(migrated))
    other_url, drop = (f"sqlite:///{tmp_path}/create_all.sqlite", None) if database == "sqlite" else \
        _private_pg_schema("hs_ca")
    try:
        created = shop(DATABASE_URL=other_url)
        with created.app_context():
            db.metadata.create_all(db.engine, tables=[db.metadata.tables[name] for name in tables])
        assert _structure(migrated, tables) == _structure(created, tables)
    finally:
        if drop:
            with created.app_context():
                db.engine.dispose()
            drop()


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(shop, database):
    app = shop()
    schema.upgrade(app)
    down = run(app, "db", "downgrade", "base")
    assert down.exit_code == 0, down.output
    assert down.output.startswith("reverted ") and "0001_accounting_export_baseline" in down.output
    assert tables_of(app) <= {schema.VERSION_TABLE}
    with app.app_context(), db.engine.connect() as conn:
        if database == "postgresql":  # the journal's trigger functions went with the plugin's branch
            assert conn.execute(sa.text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'accounting_export_%' "
                                        "AND pronamespace = current_schema()::regnamespace")).scalar() == 0
    assert run(app, "db", "upgrade").exit_code == 0
    assert run(app, "db", "check").exit_code == 0
    _assert_journal_rules_hold(app)


def _assert_journal_rules_hold(app) -> None:
    """An unbalanced entry is refused and a posted one cannot change: the triggers are there."""
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO accounting_export_postings (id, entry_id, line_no, account, role, amount, "
                             "currency) VALUES (1, 1, 1, 'Assets:Bank', 'bank', 500, 'EUR')"))
        with pytest.raises(sa.exc.DBAPIError, match="journal entry"):
            conn.execute(sa.text("INSERT INTO accounting_export_entries (id, uid, source_key, kind, booking_date, "
                                 "description, created_at) VALUES (1, 'u1', 's1', 'sale', '2025-01-01', 'x', "
                                 "'2025-01-01 00:00:00')"))
            conn.commit()  # PostgreSQL checks the balance at commit (a deferred constraint trigger)
        conn.rollback()
        conn.execute(sa.text("INSERT INTO accounting_export_postings (id, entry_id, line_no, account, role, amount, "
                             "currency) VALUES (1, 1, 1, 'Assets:Bank', 'bank', 500, 'EUR'), "
                             "(2, 1, 2, 'Income:Sales', 'revenue', -500, 'EUR')"))
        conn.execute(sa.text("INSERT INTO accounting_export_entries (id, uid, source_key, kind, booking_date, "
                             "description, created_at) VALUES (1, 'u1', 's1', 'sale', '2025-01-01', 'x', "
                             "'2025-01-01 00:00:00')"))
        conn.commit()
        with pytest.raises(sa.exc.DBAPIError, match="immutable"):
            conn.execute(sa.text("UPDATE accounting_export_postings SET amount = 400 WHERE id = 1"))
        conn.rollback()


def test_two_processes_initialising_one_database_at_once_both_succeed(empty_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSHOP_", "FLASK_"))}
    env.update(DATABASE_URL=empty_url.replace("postgresql+psycopg://", "postgresql://"),
               HOOKSHOP_INSTANCE=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    program = Path(sys.executable).parent / "hookshop"
    runs = [subprocess.Popen([str(program), "init"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in runs]
    assert all(code == 0 for code, _, _ in outcomes), outcomes
    assert sum("applied 0001_core_baseline" in out for _, out, _ in outcomes) == 1, outcomes


# -------------------------------------------------------------------------------------------- check


def test_check_names_a_model_the_migrations_do_not_have(shop):
    app = shop()
    schema.upgrade(app)
    with app.app_context():
        copy = sa.MetaData()
        for table in db.metadata.sorted_tables:
            table.to_metadata(copy)
        copy.tables["orders"].append_column(sa.Column("gift_wrap", sa.String(20)))
    problems = schema.differences(app, copy)
    assert problems == ["column orders.gift_wrap: in the models, not in the database"]


def test_check_fails_when_the_database_lost_a_column_the_models_have(shop):
    app = shop()
    schema.upgrade(app)
    with app.app_context(), db.engine.begin() as conn:
        ctx = MigrationContext.configure(conn, opts={"render_as_batch": True})
        with Operations.context(ctx):
            from alembic import op

            with op.batch_alter_table("products") as batch_op:
                batch_op.drop_column("unit_cost")
    result = run(app, "db", "check")
    assert result.exit_code == 1
    assert "column products.unit_cost: in the models, not in the database" in result.output


@pytest.mark.parametrize("database", ["postgresql"])  # SQLite ids are 64-bit rowids: no sequence
def test_check_names_a_serial_sequence_a_64_bit_id_would_outgrow(shop, database):
    MISSING = ["table staff_sessions: in the models, not in the database",
               "index ix_staff_sessions_user_id on staff_sessions: in the models, not in the database"]
    app = shop()
    schema.upgrade(app)
    with app.app_context():
        copy = sa.MetaData()
        for table in db.metadata.sorted_tables:
            table.to_metadata(copy)
        copy.tables["orders"].c.id.type = sa.BigInteger()
        copy.tables["staff_sessions"].c.id.type = sa.BigInteger()
        with db.engine.begin() as conn:  # what an autogenerated type change does, and all it does
            conn.execute(sa.text("ALTER TABLE orders ALTER COLUMN id TYPE BIGINT"))
            conn.execute(sa.text("ALTER SEQUENCE orders_id_seq AS integer"))
            conn.execute(sa.text("DROP TABLE staff_sessions"))  # a missing table is named, its sequence not probed
    assert schema.differences(app, copy) == [
        "column orders.id: its sequence orders_id_seq is integer (it stops at 2147483647): a revision needs "
        'op.execute("ALTER SEQUENCE orders_id_seq AS bigint")', *MISSING]
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("ALTER SEQUENCE orders_id_seq AS bigint"))
    assert schema.differences(app, copy) == MISSING


def test_check_ignores_tables_of_a_disabled_plugin(shop):
    schema.upgrade(shop())
    app = shop(PLUGINS_DISABLED=["accounting_export"])
    assert "accounting_export_entries" in tables_of(app)  # in the database, and its model is loaded in this process
    result = run(app, "db", "check")
    assert result.exit_code == 0, result.output


def test_a_disabled_plugins_branch_stays_where_it_is_until_the_plugin_is_enabled(shop):
    off = shop(PLUGINS_DISABLED=["accounting_export"])
    assert run(off, "init").exit_code == 0
    assert "accounting_export_entries" not in tables_of(off)
    assert "accounting_export: not applied" in run(off, "db", "current").output
    assert run(off, "db", "check").exit_code == 0

    on = shop()
    result = run(on, "db", "upgrade")
    assert result.exit_code == 0 and "applied 0001_accounting_export_baseline" in result.output, result.output
    assert run(on, "db", "check").exit_code == 0
    # and back off: the plugin's revision in alembic_version stays resolvable
    assert run(off, "db", "upgrade").exit_code == 0
    assert run(off, "db", "check").exit_code == 0


# --------------------------------------------------------------------------------------- adoption


def test_a_database_made_before_migrations_is_adopted_and_reaches_head(shop, database):
    app = shop()
    load_wave1(app, database)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO products (sku, name, price, currency, track_serials, allow_backorder, "
                             "reorder_point, reorder_quantity, weight_grams, created_at) VALUES ('MUG', 'Mug', 990, "
                             "'EUR', false, false, 0, 0, 300, '2025-01-01 00:00:00')"))
        # a plugin that was not installed then: its tables are made by its migrations now
        conn.execute(sa.text("DROP TABLE carrier_generic_tracking_events"))
        conn.execute(sa.text("DROP TABLE carrier_generic_sequences"))
    result = run(app, "init")
    assert result.exit_code == 0, result.output
    adopted = [line for line in result.output.splitlines() if line.startswith("adopted")]
    assert adopted == ["adopted a database made before migrations: stamped the baselines of accounting_export, "
                       "channel_webhook, core, payments_stripe, then upgraded"]
    applied = [line for line in result.output.splitlines() if line.startswith("applied ")]
    assert applied and "0001_carrier_generic_baseline" in applied[0], result.output
    assert "carrier_generic_sequences" in tables_of(app)
    assert_at_head(run(app, "db", "current").output)
    assert run(app, "db", "check").exit_code == 0
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM products")).scalars().all() == ["Mug"]
    _assert_journal_rules_hold(app)  # the triggers the old listeners made are the baseline's


def test_a_database_with_part_of_a_baseline_is_refused_with_the_missing_tables(shop, database):
    app = shop()
    load_wave1(app, database)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE accounting_export_sync"))
    result = run(app, "init")
    assert result.exit_code == 1
    assert "0001_accounting_export_baseline" in result.output and "accounting_export_sync" in result.output
    assert schema.VERSION_TABLE not in tables_of(app)  # nothing was stamped


# ------------------------------------------------------------------------- a third-party plugin


def test_a_plugins_own_migrations_folder_creates_its_table(shop, third_party):
    app = shop(EXTRA_PLUGINS=[("acme_wishlist", third_party["acme_wishlist"])])
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0001_acme_wishlist_baseline, 0002_acme_wishlist_note" in result.output or (
        "0001_acme_wishlist_baseline" in result.output and "0002_acme_wishlist_note" in result.output)
    assert "acme_wishlist_wishes" in tables_of(app)
    assert "acme_wishlist: 0002_acme_wishlist_note (head)" in run(app, "db", "current").output
    assert run(app, "db", "check").exit_code == 0

    down = run(app, "db", "downgrade", "acme_wishlist@-1")
    assert down.exit_code == 0 and "reverted 0002_acme_wishlist_note" in down.output, down.output
    check = run(app, "db", "check")
    assert check.exit_code == 1
    assert "acme_wishlist is not at its head 0002_acme_wishlist_note" in check.output
    assert "column acme_wishlist_wishes.note: in the models, not in the database" in check.output

    # uninstalled while its tables are there: refused, naming the revision and the way out
    plain = shop()
    refused = run(plain, "db", "upgrade")
    assert refused.exit_code == 1
    assert "0001_acme_wishlist_baseline" in refused.output and "downgrade <plugin>@base" in refused.output
    assert run(app, "db", "downgrade", "acme_wishlist@base").exit_code == 0
    assert "acme_wishlist_wishes" not in tables_of(app)
    assert run(plain, "db", "check").exit_code == 0


def test_check_names_the_table_of_a_plugin_that_ships_no_migrations(shop, third_party):
    from engine.testing import ConformanceError, check_migrations

    app = shop(EXTRA_PLUGINS=[("acme_unmigrated", third_party["acme_unmigrated"])])
    assert run(app, "init").exit_code == 0
    result = run(app, "db", "check")
    assert result.exit_code == 1
    assert "table acme_unmigrated_notes: in the models, not in the database" in result.output
    with pytest.raises(ConformanceError, match="acme_unmigrated_notes"):
        check_migrations(app)


def test_revision_starts_a_plugins_branch_that_upgrade_then_runs(shop, third_party):
    package = Path(third_party["acme_unmigrated"].__file__).parent
    app = shop(EXTRA_PLUGINS=[("acme_unmigrated", third_party["acme_unmigrated"])])
    schema.upgrade(app)
    try:
        result = run(app, "db", "revision", "-m", "Notes table", "--branch", "acme_unmigrated")
        assert result.exit_code == 0, result.output
        written = package / "migrations" / "versions" / "0001_acme_unmigrated_notes_table.py"
        assert f"wrote {written}" in result.output
        text = written.read_text()
        with app.app_context():
            core_head = schema._script(app).get_revision("core@head").revision
        assert "branch_labels = ('acme_unmigrated',)" in text and f"depends_on = '{core_head}'" in text
        assert "op.create_table('acme_unmigrated_notes'" in text
        ruff = Path(sys.executable).parent / "ruff"
        if ruff.exists():  # the file as autogenerated passes the project's lint
            lint = subprocess.run([str(ruff), "check", "--quiet", "--config", str(ROOT / "pyproject.toml"),
                                   str(written)], capture_output=True, text=True)
            assert lint.returncode == 0, lint.stdout + lint.stderr
        fresh = shop(EXTRA_PLUGINS=[("acme_unmigrated", third_party["acme_unmigrated"])])
        assert "applied 0001_acme_unmigrated_notes_table" in run(fresh, "db", "upgrade").output
        assert run(fresh, "db", "check").exit_code == 0
        nothing = run(fresh, "db", "revision", "-m", "nothing", "--branch", "acme_unmigrated")
        assert nothing.exit_code == 0 and "no revision written" in nothing.output
        assert sorted(p.name for p in written.parent.glob("*.py")) == [written.name]
        blank = run(fresh, "db", "revision", "-m", "backfill", "--branch", "acme_unmigrated", "--empty")
        second = written.parent / "0002_acme_unmigrated_backfill.py"
        assert blank.exit_code == 0 and second.exists(), blank.output
        text = second.read_text()  # it stands on the core's head already (through the first one)
        assert "down_revision = '0001_acme_unmigrated_notes_table'" in text and "depends_on = None" in text
    finally:
        import shutil

        shutil.rmtree(package / "migrations", ignore_errors=True)


@pytest.mark.parametrize("database", ["postgresql"])  # where the type change shows
def test_revision_widens_the_type_and_the_sequence_of_a_64_bit_id_and_runs_on_both_databases(
        shop, third_party, tmp_path):
    plugin = [("acme_bigid", third_party["acme_bigid"])]
    versions = Path(third_party["acme_bigid"].__file__).parent / "migrations" / "versions"
    app = shop(EXTRA_PLUGINS=plugin)
    schema.upgrade(app)
    before = run(app, "db", "check").output
    assert "column acme_bigid_tickets.id: type is INTEGER()" in before
    assert "its sequence acme_bigid_tickets_id_seq is integer" in before
    try:
        result = run(app, "db", "revision", "-m", "64-bit ids", "--branch", "acme_bigid")
        assert result.exit_code == 0, result.output
        text = (versions / "0002_acme_bigid_64_bit_ids.py").read_text()
        assert "type_=sa.BigInteger().with_variant(sa.Integer(), 'sqlite')" in text
        assert ('    if op.get_bind().dialect.name == "postgresql":  # the sequence follows the id type\n'
                '        op.execute("ALTER SEQUENCE acme_bigid_tickets_id_seq AS bigint")\n') in text
        assert "autoincrement" not in text  # MySQL-only arguments left out
        assert run(app, "db", "upgrade").exit_code == 0
        assert run(app, "db", "check").exit_code == 0
        assert run(app, "db", "downgrade", "acme_bigid@-1").exit_code == 0
        assert "its sequence acme_bigid_tickets_id_seq is integer" in run(app, "db", "check").output

        on_sqlite = shop(DATABASE_URL=f"sqlite:///{tmp_path}/bigid.sqlite", EXTRA_PLUGINS=plugin)
        assert run(on_sqlite, "init").exit_code == 0
        assert run(on_sqlite, "db", "check").exit_code == 0
    finally:
        (versions / "0002_acme_bigid_64_bit_ids.py").unlink(missing_ok=True)


def test_revision_ids_are_numbered_per_branch_and_fit_alembic_version(shop):
    app = shop()
    with app.app_context():
        script = schema._script(app)
    number = int(script.get_revision("core@head").revision[:4]) + 1
    assert schema._next_revision_id(script, "core", "Refunds and order flags") == \
        f"{number:04d}_core_refunds_and_order_flag"  # cut to 32 characters
    number = int(script.get_revision("accounting_export@head").revision[:4]) + 1
    assert schema._next_revision_id(script, "accounting_export", "x") == f"{number:04d}_accounting_export_x"
    with pytest.raises(SchemaError, match="no branch 'nope'"):
        schema.revision(app, "x", "nope")


# ------------------------------------------------------------------ the journal's rules and batch mode


def test_a_batch_migration_rebuilds_a_referenced_table_keeping_rows_and_foreign_keys(shop, third_party, database):
    """SQLite: the foreign keys are off while the migration copies the table, and on again after."""
    app = shop(EXTRA_PLUGINS=[("acme_rebuild", third_party["acme_rebuild"])])
    result = run(app, "init")
    assert result.exit_code == 0 and "0002_acme_rebuild_longer_code" in result.output, result.output
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT code FROM acme_rebuild_parents ORDER BY id")).scalars().all() == ["A", "B"]
        with pytest.raises(sa.exc.IntegrityError):  # still enforced after the migration
            conn.execute(sa.text("INSERT INTO acme_rebuild_children (id, parent_id) VALUES (3, 99)"))
            conn.commit()
        conn.rollback()
        columns = {c["name"]: c for c in sa.inspect(conn).get_columns("acme_rebuild_parents")}
        assert columns["code"]["type"].length == 40
        if database == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_journal_rules_survive_a_batch_migration_that_recreates_their_tables(shop):
    """What the baseline's docstring tells a later revision to do: drop the rules, alter, create them."""
    app = shop()
    schema.upgrade(app)
    with app.app_context():
        rules = schema._script(app).get_revision("0001_accounting_export_baseline").module
        if db.engine.dialect.name == "sqlite":  # without the helpers SQLite refuses to put the copy in place
            with pytest.raises(sa.exc.OperationalError, match="error in trigger"), db.engine.begin() as conn:
                with Operations.context(MigrationContext.configure(conn, opts={"render_as_batch": True})):
                    from alembic import op

                    with op.batch_alter_table("accounting_export_entries", recreate="always") as batch_op:
                        batch_op.add_column(sa.Column("memo2", sa.String(20)))
        with db.engine.begin() as conn:
            ctx = MigrationContext.configure(conn, opts={"render_as_batch": True})
            with Operations.context(ctx):
                from alembic import op

                rules.drop_journal_rules()
                # SQLite copies the table (what loses triggers); PostgreSQL alters it in place
                recreate = "always" if conn.dialect.name == "sqlite" else "auto"
                for table in ("accounting_export_entries", "accounting_export_postings"):
                    with op.batch_alter_table(table, recreate=recreate) as batch_op:
                        batch_op.add_column(sa.Column("memo2", sa.String(20)))
                rules.create_journal_rules()
    _assert_journal_rules_hold(app)


# ---------------------------------------------------------------------------------- the commands


def test_flask_and_hookshop_db_upgrade_run_hookshops_command_to_every_head(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOOKSHOP_", "FLASK_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(HOOKSHOP_INSTANCE=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    flask = subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "engine", "db", "upgrade"],
                           env=env, capture_output=True, text=True, timeout=120)
    # Flask-Migrate's own `db upgrade` means `head`, which fails with one branch per plugin
    assert flask.returncode == 0, flask.stderr
    assert "schema at heads" in flask.stdout
    current = subprocess.run([str(Path(sys.executable).parent / "hookshop"), "db", "current"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert_at_head(current.stdout)


def test_a_flask_commands_entry_point_named_db_does_not_replace_hookshops(monkeypatch):
    from importlib import metadata

    from flask_migrate.cli import db as flask_migrate_db

    class EntryPoint:
        name = "db"

        def load(self):
            return flask_migrate_db

    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda **kw: [EntryPoint()] if kw.get("group") == "flask.commands" else real(**kw))
    ctx = click.Context(cli, obj=ScriptInfo(create_app=lambda: None))
    ours = HookshopGroup(commands=dict(cli.commands), create_app=lambda: None)
    plain = FlaskGroup(commands=dict(cli.commands), create_app=lambda: None)
    assert ours.get_command(ctx, "db") is cli.commands["db"]
    assert plain.get_command(ctx, "db") is flask_migrate_db  # what Flask alone would do


def test_every_migration_file_ships_in_the_package():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = [p for p in (ROOT / "engine" / "migrations").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [p for p in (ROOT / "plugins").glob("*/migrations/**/*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.name == "0001_core_baseline.py" for p in files)
    for path in files:
        package = path.relative_to(ROOT).parts[0]
        relative = path.relative_to(ROOT / package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data[package]), relative


# ------------------------------------------------- revision 0002 of the core, from the previous head
# money under one lock, flags as rows, 64-bit integers: tested with the data a shop has at 0001 (flags
# in the JSON column, refunds in payments.data, amounts that need 64 bits afterwards)

BEFORE = "0001_core_baseline"
NOW = "2026-01-05 10:00:00"


def _at_previous_head(app) -> None:
    schema.upgrade(app, BEFORE)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (id, email, name, addresses, preferences, order_count, total_spent, vip, "
            "created_at, updated_at) VALUES (1, 'ann@example.com', 'Ann', '[]', '{}', 2, 5000, false, :now, :now)"),
            {"now": NOW})
        for order_id, flags, paid, refunded in ((1, ["gift", "coupon:welcome", "repeat"], 2500, 1000),
                                               (2, [], 2500, 0)):
            conn.execute(sa.text(
                "INSERT INTO orders (id, status, payment_status, payment_provider, channel, customer_id, email, "
                "customer_name, shipping_address, currency, subtotal, discount_total, shipping_total, tax_total, "
                "total, paid_total, refunded_total, gift, flags, created_at, updated_at) VALUES (:id, 'delivered', "
                "'paid', 'manual', 'api', 1, 'ann@example.com', 'Ann', '{}', 'EUR', 2500, 0, 0, 0, 2500, :paid, "
                ":refunded, false, :flags, :now, :now)"),
                {"id": order_id, "paid": paid, "refunded": refunded, "flags": json.dumps(flags), "now": NOW})
        refunds = [{"reference": "manual-refund-1", "amount": 1000, "status": "succeeded"},
                   {"reference": "manual-refund-2", "amount": 500, "status": "failed"}]
        conn.execute(sa.text(
            "INSERT INTO payments (id, order_id, provider, amount, currency, status, reference, refunded_amount, data, "
            "created_at, updated_at) VALUES (7, 1, 'manual', 2500, 'EUR', 'partially_refunded', 'manual-1', 1000, "
            ":data, :now, :now)"), {"data": json.dumps({"history": ["paid"], "refunds": refunds}), "now": NOW})


def test_0002_keeps_flags_and_refunds_and_widens_integers(shop, database):
    app = shop()
    _at_previous_head(app)
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0002_core_money_flags_64bit" in result.output
    assert run(app, "db", "check").exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        flags = conn.execute(sa.text("SELECT order_id, flag, position FROM order_flags ORDER BY order_id, position"))
        assert [tuple(r) for r in flags] == [(1, "gift", 0), (1, "coupon:welcome", 1), (1, "repeat", 2)]
        refunds = conn.execute(sa.text("SELECT order_id, payment_id, amount, status, reference FROM refunds "
                                       "ORDER BY id"))
        assert [tuple(r) for r in refunds] == [(1, 7, 1000, "succeeded", "manual-refund-1"),
                                              (1, 7, 500, "failed", "manual-refund-2")]
        claims = conn.execute(sa.text("SELECT claim, claim_token, claim_expires_at FROM orders WHERE id = 1")).one()
        assert tuple(claims) == (None, None, None)
        # 64-bit: amounts and ids past 2**31 are stored (on PostgreSQL the columns and sequences widened)
        conn.execute(sa.text("UPDATE orders SET total = 9000000000, paid_total = 9000000000 WHERE id = 2"))
        assert conn.execute(sa.text("SELECT total FROM orders WHERE id = 2")).scalar() == 9_000_000_000
        if database == "postgresql":
            conn.execute(sa.text("SELECT setval('orders_id_seq', 3000000000)"))
            types = dict(conn.execute(sa.text(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'orders' "
                "AND column_name IN ('id', 'total', 'customer_id')")).all())
            assert types == {"id": "bigint", "total": "bigint", "customer_id": "bigint"}
        # the new checks hold: no refund above what was paid
        with pytest.raises(sa.exc.IntegrityError):
            with conn.begin_nested():
                conn.execute(sa.text("UPDATE orders SET refunded_total = paid_total + 1 WHERE id = 1"))

    # and back, while every number still fits 32 bits: the flags return to their JSON column
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET total = 2500, paid_total = 2500 WHERE id = 2"))
        if database == "postgresql":
            conn.execute(sa.text("SELECT setval('orders_id_seq', 2)"))
    assert run(app, "db", "downgrade", "0001_core_baseline").exit_code == 0
    with app.app_context(), db.engine.connect() as conn:
        flags = conn.execute(sa.text("SELECT flags FROM orders WHERE id = 1")).scalar()
        assert (json.loads(flags) if isinstance(flags, str) else flags) == ["gift", "coupon:welcome", "repeat"]


def test_0002_refuses_a_database_whose_money_breaks_the_new_checks_and_changes_nothing(shop, database):
    app = shop()
    _at_previous_head(app)
    with app.app_context(), db.engine.begin() as conn:  # what the concurrent-refund bug of wave 1 could leave
        conn.execute(sa.text("UPDATE orders SET refunded_total = 5000 WHERE id = 2"))
    result = run(app, "db", "upgrade")
    assert result.exit_code != 0
    assert "orders [2]" in result.output and "run `hookshop db upgrade` again" in result.output, result.output
    with app.app_context():
        assert "refunds" not in sa.inspect(db.engine).get_table_names()
        assert "flags" in {c["name"] for c in sa.inspect(db.engine).get_columns("orders")}
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET refunded_total = 0 WHERE id = 2"))
    assert run(app, "db", "upgrade").exit_code == 0


def test_0003_keeps_orders_and_customers_and_lets_channel_orders_lack_email_and_address(shop, database):
    app = shop()
    _at_previous_head(app)
    assert run(app, "db", "upgrade", "0002_core_money_flags_64bit").exit_code == 0
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0003_core_channel_orders" in result.output
    assert run(app, "db", "check").exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT email, total, tax_status, prices_include_tax, tax_lines, non_stock_lines, "
                                   "billing_address, presentment_currency FROM orders WHERE id = 1")).one()
        loaded = [json.loads(v) if isinstance(v, str) else v for v in (row[4], row[5])]
        assert (row[0], row[1], row[2], bool(row[3]), loaded, row[6], row[7]) == (
            "ann@example.com", 2500, "not_given", False, [[], []], None, None)
        # an order and a customer without e-mail, an order without shipping address
        conn.execute(sa.text(
            "INSERT INTO customers (id, email, channel, channel_customer_id, name, addresses, preferences, "
            "order_count, total_spent, spent_by_currency, vip, created_at, updated_at) VALUES (2, NULL, 'pos', '77', "
            "'Bo', '[]', '{}', 0, 0, '{}', false, :now, :now)"), {"now": NOW})
        conn.execute(sa.text("UPDATE orders SET email = NULL, shipping_address = NULL, customer_id = 2 WHERE id = 2"))
        with pytest.raises(sa.exc.IntegrityError):  # one profile per channel customer
            with conn.begin_nested():
                conn.execute(sa.text(
                    "INSERT INTO customers (id, email, channel, channel_customer_id, name, addresses, preferences, "
                    "order_count, total_spent, spent_by_currency, vip, created_at, updated_at) VALUES (3, NULL, "
                    "'pos', '77', 'Bo', '[]', '{}', 0, 0, '{}', false, :now, :now)"), {"now": NOW})
    # the previous schema cannot hold them: the downgrade says so and changes nothing
    result = run(app, "db", "downgrade", "0002_core_money_flags_64bit")
    assert result.exit_code != 0 and "no e-mail or shipping address" in result.output, result.output
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET email = 'bo@example.com', shipping_address = '{}', customer_id = 1 "
                             "WHERE id = 2"))
        conn.execute(sa.text("DELETE FROM customers WHERE id = 2"))
    assert run(app, "db", "downgrade", "0002_core_money_flags_64bit").exit_code == 0
    with app.app_context():
        assert "tax_lines" not in {c["name"] for c in sa.inspect(db.engine).get_columns("orders")}


# ------------------------------------------------- revision 0004 of the core, from the previous head
# archived products: the products of a shop at 0003 stay live, and archiving is a column and two indexes

def test_0004_adds_archived_at_keeping_every_product_live(shop, database):
    app = shop()
    schema.upgrade(app, "0003_core_channel_orders")
    with app.app_context(), db.engine.begin() as conn:
        for product_id, sku in ((1, "MUG"), (2, "CAP")):
            conn.execute(sa.text(
                "INSERT INTO products (id, sku, name, price, currency, barcode, track_serials, allow_backorder, "
                "reorder_point, reorder_quantity, weight_grams, created_at) VALUES (:id, :sku, :sku, 1290, 'EUR', "
                "NULL, false, false, 0, 0, 0, :now)"), {"id": product_id, "sku": sku, "now": NOW})
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0004_core_product_archive" in result.output
    assert run(app, "db", "check").exit_code == 0
    with app.app_context():
        indexes = {ix["name"] for ix in sa.inspect(db.engine).get_indexes("products")}
        assert {"ix_products_live_id", "ix_products_archived_id"} <= indexes
    with app.app_context(), db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT sku, archived_at FROM products ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("MUG", None), ("CAP", None)]
        conn.execute(sa.text("UPDATE products SET archived_at = :now WHERE sku = 'CAP'"), {"now": NOW})
        plan_sql = "SELECT id FROM products WHERE archived_at IS NOT NULL ORDER BY id DESC LIMIT 5"
        if database == "sqlite":  # the listing of archived products reads its partial index
            plan = " ".join(str(r) for r in conn.execute(sa.text("EXPLAIN QUERY PLAN " + plan_sql)))
            assert "ix_products_archived_id" in plan, plan
    with app.app_context():
        client = app.test_client()
        from engine.services import auth

        _, key = auth.create_api_key("t", ["read"])
        listed = client.get("/api/v1/products?archived=true", headers={"Authorization": f"Bearer {key}"}).get_json()
        assert [p["sku"] for p in listed["items"]] == ["CAP"]

    result = run(app, "db", "downgrade", "0003_core_channel_orders")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert "archived_at" not in {c["name"] for c in sa.inspect(db.engine).get_columns("products")}
        assert [r[0] for r in db.session.execute(sa.text("SELECT sku FROM products ORDER BY id"))] == ["MUG", "CAP"]
        db.session.remove()
    assert run(app, "db", "upgrade").exit_code == 0


def test_0005_splits_what_customers_spent_per_currency(shop, database):
    app = shop()
    _at_previous_head(app)
    assert run(app, "db", "upgrade", "0004_core_product_archive").exit_code == 0
    with app.app_context(), db.engine.begin() as conn:
        # what wave 1 stored: 5000 EUR + 3000 JPY added together, no profile currency
        conn.execute(sa.text("UPDATE customers SET total_spent = 8000, currency = NULL WHERE id = 1"))
        for order_id, currency, status in ((3, "JPY", "paid"), (4, "JPY", "cancelled")):
            conn.execute(sa.text(
                "INSERT INTO orders (id, status, payment_status, payment_provider, channel, customer_id, email, "
                "customer_name, shipping_address, currency, subtotal, discount_total, shipping_total, tax_total, "
                "total, paid_total, refunded_total, gift, non_stock_lines, tax_lines, prices_include_tax, tax_status, "
                "created_at, updated_at) VALUES (:id, :status, 'paid', 'manual', 'api', 1, 'ann@example.com', 'Ann', "
                "'{}', :currency, 3000, 0, 0, 0, 3000, 3000, 0, false, '[]', '[]', false, 'not_given', :now, :now)"),
                {"id": order_id, "status": status, "currency": currency, "now": NOW})
    result = run(app, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "0005_core_customer_spent" in result.output
    assert run(app, "db", "check").exit_code == 0
    with app.app_context(), db.engine.connect() as conn:
        spent, total, currency = conn.execute(sa.text(
            "SELECT spent_by_currency, total_spent, currency FROM customers WHERE id = 1")).one()
        spent = json.loads(spent) if isinstance(spent, str) else spent
        # EUR: 2500 - 1000 refunded + 2500; JPY: the open order only (the cancelled one spent nothing)
        assert (spent, total, currency) == ({"EUR": 4000, "JPY": 3000}, 4000, "EUR")
    assert run(app, "db", "downgrade", "0004_core_product_archive").exit_code == 0
    with app.app_context():
        assert "spent_by_currency" not in {c["name"] for c in sa.inspect(db.engine).get_columns("customers")}
