"""The database schema: Alembic migrations, run through Flask-Migrate, one branch per owner of tables.

* The core's revisions are the branch ``core`` in ``engine/migrations/versions``. A plugin that owns
  tables ships its own branch (label: the plugin's name, first revision ``depends_on`` the core revision
  its tables need) in a ``migrations/versions`` folder inside its package directory. The folders are
  found through the plugin registry (``app.extensions["hookshop"]``): the core never imports a plugin.
* ``upgrade`` brings the core and every plugin to its head in one transaction. A database that
  ``create_all`` made before migrations existed (tables, no ``alembic_version``) is adopted first: each
  baseline whose tables are all there is stamped, not run.
* ``differences`` is Alembic's autogenerate comparison of the loaded models with the database, limited to
  the tables of the core and of the loaded plugins: a table no loaded model knows (a disabled plugin's)
  is not a difference.

A plugin kept out by ``HOOKSHOP_PLUGINS_DISABLED`` keeps its revisions known (its folder is located from
its entry point without importing it), so the revisions its tables reached stay resolvable, but
``upgrade`` leaves its branch where it is.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata, renderers
from alembic.operations import MigrateOperation
from alembic.operations.ops import AlterColumnOp
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask, current_app
from flask_migrate import Migrate
from sqlalchemy.dialects.postgresql import JSONB

from engine.db import db, reset_write_intent, set_write_intent
from engine.errors import SchemaError

MIGRATIONS = Path(__file__).with_name("migrations")
CORE = "core"
CORE_BASELINE = "0001_core_baseline"
VERSION_TABLE = "alembic_version"
REVISION_ID_LENGTH = 32  # alembic_version.version_num is a VARCHAR(32)
# the transaction-scoped advisory lock that serialises two processes migrating one PostgreSQL database
_PG_LOCK = 7_310_417_655


@dataclass(frozen=True)
class Owner:
    """The core or a plugin: who owns tables, and where its revisions live."""

    name: str
    package: str  # the module prefix of its models ("engine" for the core)
    directory: Path  # its package directory
    loaded: bool  # False: HOOKSHOP_PLUGINS_DISABLED kept it from being imported

    @property
    def versions(self) -> Path:
        return self.directory / "migrations" / "versions"


def init_app(app: Flask) -> None:
    """Set up Flask-Migrate with the core's migrations folder and every owner's versions folder."""
    migrate = Migrate(app, db, directory=str(MIGRATIONS), compare_type=True, render_as_batch=True)

    @migrate.configure
    def _version_locations(config):
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join(
            str(path).replace("%", "%%") for path in version_locations(app)))
        config.set_main_option("file_template", "%%(rev)s")  # the file is named by its revision id
        return config


def owners(app: Flask) -> list[Owner]:
    """The core, then each plugin whose package directory can be found (enabled or not)."""
    found = [Owner(CORE, "engine", MIGRATIONS.parent, True)]
    for info in app.extensions["hookshop"].infos:
        if info.core:
            continue
        located = _package_of(info.plugin) if info.plugin is not None else _package_by_name(info.module)
        if located is not None:
            found.append(Owner(info.name, *located, loaded=info.plugin is not None))
    return found


def _package_of(plugin) -> tuple[str, Path] | None:
    """A registered plugin (module, class or instance) -> its package name and directory."""
    module = plugin if inspect.ismodule(plugin) else inspect.getmodule(
        plugin if inspect.isclass(plugin) else type(plugin))
    if module is None or not getattr(module, "__file__", None):
        return None
    if hasattr(module, "__path__"):
        package = module.__name__
    else:
        package = module.__name__.rpartition(".")[0] or module.__name__
    return package, Path(module.__file__).resolve().parent


def _package_by_name(value: str) -> tuple[str, Path] | None:
    """An entry point's ``module[:attr]`` -> its package, located without running the module."""
    name = value.partition(":")[0].strip()
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    package = name if spec.submodule_search_locations else (name.rpartition(".")[0] or name)
    return package, Path(spec.origin).resolve().parent


def version_locations(app: Flask) -> list[Path]:
    """Every existing versions folder: the core's first."""
    found: list[Path] = []
    for owner in owners(app):
        if owner.versions.is_dir() and owner.versions not in found:
            found.append(owner.versions)
    return found


def owned_tables(app: Flask, owner: str | None = None) -> dict[str, str]:
    """Table name -> owner name, for the models of the core and of the loaded plugins (or of ``owner``)."""
    prefixes = sorted(((o.package, o.name) for o in owners(app) if o.loaded), key=lambda p: -len(p[0]))
    tables: dict[str, str] = {}
    for mapper in db.Model.registry.mappers:
        module = mapper.class_.__module__
        for package, name in prefixes:
            if module == package or module.startswith(package + "."):
                if owner is None or owner == name:
                    tables.update((table.name, name) for table in mapper.tables)
                break
    return tables


# ------------------------------------------------------------------------------------- running Alembic


def alembic_config(app: Flask, **attributes):
    """Flask-Migrate's Alembic config with every versions folder; ``attributes`` reach env.py."""
    config = app.extensions["migrate"].migrate.get_config()
    config.attributes.update(attributes)
    return config


def _include(tables: set[str]):
    """Alembic's ``include_object``: compare only these tables (and everything on them)."""

    def include_object(_object, name, type_, _reflected, _compare_to):
        return name in tables if type_ == "table" else True

    return include_object


def run_environment(context) -> None:
    """What ``engine/migrations/env.py`` does: run the Alembic command on the app's engine.

    One transaction for the whole command on both databases. On SQLite the foreign keys are off while
    it runs, as SQLite's own procedure for schema changes says (batch mode copies a table, drops the
    old one and renames the copy), and checked before the commit; the write transaction starts
    ``BEGIN IMMEDIATE``. On PostgreSQL an advisory lock makes a second process wait and then find
    the work done.
    """
    if context.is_offline_mode():
        raise SchemaError("hookshop runs its migrations on a live database (no --sql mode)")
    config = context.config
    app = current_app._get_current_object()
    tables = config.attributes.get("tables")
    if tables is None:
        tables = set(owned_tables(app))
    applied = config.attributes.setdefault("applied", [])

    def on_version_apply(ctx, step, heads, run_args):
        applied.append((step.up_revision_id, step.is_upgrade, step.is_stamp))

    def render_item(type_, obj, autogen_context):
        # Alembic renders JSONB's default argument as a bare `Text()` that the revision does not import
        if type_ == "type" and isinstance(obj, JSONB):
            autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
            return "postgresql.JSONB()"
        return False

    def complete_revision(ctx, revision, directives):
        if not config.attributes.get("autogenerate"):
            return
        script = directives[0]
        for container in (script.upgrade_ops, script.downgrade_ops):
            for table_ops in container.ops:
                for op in getattr(table_ops, "ops", ()):
                    if isinstance(op, AlterColumnOp):  # MySQL-only arguments: noise (and a warning) elsewhere
                        op.kw.pop("autoincrement", None)
                        op.kw.pop("existing_autoincrement", None)
        if ctx.connection.dialect.name == "postgresql":  # what autogenerate does not see: sequences
            for _table, _column, sequence in _narrow_sequences(ctx.connection, db.metadata, tables):
                script.upgrade_ops.ops.append(AlterSequenceOp(sequence, "bigint", "integer"))
                script.downgrade_ops.ops.insert(0, AlterSequenceOp(sequence, "integer", "bigint"))
        if script.upgrade_ops.is_empty():
            directives[:] = []

    options = dict(app.extensions["migrate"].configure_args)
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # outside any transaction: inside one the pragma is a no-op
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        token = set_write_intent(True)
        try:
            context.configure(connection=connection, target_metadata=db.metadata,
                              include_object=_include(tables), transactional_ddl=True,
                              on_version_apply=on_version_apply, render_item=render_item,
                              process_revision_directives=complete_revision, **options)
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise SchemaError(f"the migration broke foreign keys (table, rowid, parent): {broken[:5]}")
        finally:
            reset_write_intent(token)
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def _script(app: Flask) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(app))


def _current(app: Flask, script: ScriptDirectory) -> tuple[str, ...]:
    """The revisions in ``alembic_version``; refuses those no versions folder has."""
    with db.engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    unknown = [rev for rev in heads if not _known(script, rev)]
    if unknown:
        raise SchemaError(
            f"the database is at revision {', '.join(unknown)}, which no installed migrations folder has: "
            "a plugin whose migrations ran is not installed any more. Reinstall it: HOOKSHOP_PLUGINS_DISABLED "
            "keeps it off and its tables untouched, and `hookshop db downgrade <plugin>@base` removes its "
            "tables before you uninstall it")
    return heads


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        script.get_revision(revision)
    except CommandError:
        return False
    return True


def _branch_heads(app: Flask, script: ScriptDirectory, *, loaded_only: bool) -> dict[str, str]:
    """Owner name -> the head revision of its branch (owners with revisions only)."""
    heads = {}
    for owner in owners(app):
        if loaded_only and not owner.loaded:
            continue
        try:
            head = script.get_revision(f"{owner.name}@head")
        except CommandError:
            continue  # no branch (yet)
        heads[owner.name] = head.revision
    return heads


def _applied(script: ScriptDirectory, current: tuple[str, ...]) -> set[str]:
    """Every revision the current heads stand on (dependencies included)."""
    return {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()


def _describe_steps(steps: list[tuple[str, bool, bool]]) -> list[str]:
    """``[(revision, is_upgrade, is_stamp), ...]`` -> e.g. ``["applied 0001_core_baseline, 0002_core_refunds"]``."""
    lines: dict[str, list[str]] = {}
    for revision, is_upgrade, is_stamp in steps:
        lines.setdefault("stamped" if is_stamp else "applied" if is_upgrade else "reverted", []).append(revision)
    return [f"{verb} {', '.join(revisions)}" for verb, revisions in lines.items()]


def upgrade(app: Flask, revision: str = "heads") -> list[str]:
    """Bring the schema to ``revision`` (default: the core and every loaded plugin at its head).

    Returns what was done, one line each: the adoption of a database made before migrations, then
    the revisions applied.
    """
    with app.app_context():
        notes = []
        adopted = _adopt(app)
        if adopted:
            notes.append(adopted)
        script = _script(app)
        _current(app, script)
        targets = [revision]
        if revision == "heads" and _branch_heads(app, script, loaded_only=True) != _branch_heads(
                app, script, loaded_only=False):
            targets = [f"{name}@head" for name in _branch_heads(app, script, loaded_only=True)]
        applied = []
        for target in targets:
            config = alembic_config(app)
            _run(command.upgrade, config, target)
            applied += config.attributes["applied"]
        return notes + _describe_steps(applied)


def downgrade(app: Flask, revision: str) -> list[str]:
    """Revert to ``revision`` (e.g. ``core@-1``, ``accounting_export@base``, ``base``)."""
    with app.app_context():
        _current(app, _script(app))
        config = alembic_config(app)
        _run(command.downgrade, config, revision)
        return _describe_steps(config.attributes["applied"])


def stamp(app: Flask, revision: str) -> None:
    """Record ``revision`` in ``alembic_version`` without running it (e.g. for a hand-made database)."""
    with app.app_context():
        _run(command.stamp, alembic_config(app), revision)


def _run(fn, config, *args, **kwargs):
    try:
        return fn(config, *args, **kwargs)
    except CommandError as exc:
        raise SchemaError(str(exc)) from exc


def current(app: Flask) -> list[str]:
    """One line per branch: its revision in the database and whether that is its head."""
    with app.app_context():
        script = _script(app)
        applied = _applied(script, _current(app, script))
        lines = []
        for name, head in _branch_heads(app, script, loaded_only=False).items():
            on_branch = [rev for rev in script.iterate_revisions(f"{name}@head", "base")
                         if rev.revision in applied and name in rev.branch_labels]
            if not on_branch:
                state = "not applied"
            else:
                state = on_branch[0].revision + (" (head)" if on_branch[0].revision == head else f" (head: {head})")
            lines.append(f"{name}: {state}")
        return lines


def differences(app: Flask, metadata: sa.MetaData | None = None) -> list[str]:
    """What stands between the loaded models (or ``metadata``) and the database; empty when they agree.

    A branch of a loaded owner that is not at its head is a difference; so is every change Alembic's
    autogenerate would write for the tables of the core and the loaded plugins (types included).
    """
    with app.app_context():
        script = _script(app)
        applied = _applied(script, _current(app, script))
        problems = [f"{name} is not at its head {head}: run `hookshop db upgrade`"
                    for name, head in _branch_heads(app, script, loaded_only=True).items() if head not in applied]
        metadata = db.metadata if metadata is None else metadata
        owned = set(owned_tables(app))
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "target_metadata": metadata, "include_object": _include(owned)})
            diffs = compare_metadata(context, metadata)
            if connection.dialect.name == "postgresql":
                problems += [f"column {table}.{column}: its sequence {sequence} is integer (it stops at 2147483647): "
                             f"a revision needs op.execute(\"ALTER SEQUENCE {sequence} AS bigint\")"
                             for table, column, sequence in _narrow_sequences(connection, metadata, owned)]
        for diff in diffs:
            problems.extend(_describe(item) for item in (diff if isinstance(diff, list) else [diff]))
        return problems


def _narrow_sequences(connection, metadata: sa.MetaData, tables: set[str]) -> list[tuple[str, str, str]]:
    """PostgreSQL: the 64-bit ids whose SERIAL sequence is still ``integer`` (it stops at 2147483647), as
    ``(table, column, sequence)``.

    Altering the column's type does not alter its sequence, and autogenerate does not see sequences.
    """
    found = []
    present = set(sa.inspect(connection).get_table_names())  # a missing table is a difference already
    for table in (metadata.tables[name] for name in sorted(tables & present) if name in metadata.tables):
        column = table.autoincrement_column
        if column is None or not isinstance(column.type.dialect_impl(connection.dialect), sa.BigInteger):
            continue
        row = connection.execute(sa.text(
            "SELECT seq.seqrelid::regclass::text, seq.seqtypid::regtype::text FROM pg_sequence seq "
            "WHERE seq.seqrelid = pg_get_serial_sequence(:table, :column)::regclass"),
            {"table": table.name, "column": column.name}).first()
        if row is not None and row[1] != "bigint":
            found.append((table.name, column.name, row[0]))
    return found


class AlterSequenceOp(MigrateOperation):
    """``ALTER SEQUENCE <name> AS <type>`` on PostgreSQL (a no-op elsewhere), for autogenerated revisions."""

    def __init__(self, sequence: str, as_type: str, previous: str):
        self.sequence, self.as_type, self.previous = sequence, as_type, previous

    def reverse(self):
        return AlterSequenceOp(self.sequence, self.previous, self.as_type)


@renderers.dispatch_for(AlterSequenceOp)
def _render_alter_sequence(_autogen_context, op: AlterSequenceOp) -> list[str]:
    # Alembic's printer indents after a line ending in ":" and dedents after a blank line
    return ['if op.get_bind().dialect.name == "postgresql":  # the sequence follows the id type',
            f'op.execute("ALTER SEQUENCE {op.sequence} AS {op.as_type}")', ""]


def _describe(diff: tuple) -> str:
    """One of Alembic's autogenerate differences as a sentence."""
    kind = diff[0]
    where = "in the models, not in the database" if kind.startswith("add") else "in the database, not in the models"
    if kind in ("add_table", "remove_table"):
        return f"table {diff[1].name}: {where}"
    if kind in ("add_column", "remove_column"):
        return f"column {diff[2]}.{diff[3].name}: {where}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        item = diff[1]
        noun = {"index": "index", "constraint": "constraint", "fk": "foreign key"}[kind.partition("_")[2]]
        table = getattr(item, "table", None)
        return f"{noun} {item.name or '(unnamed)'} on {table.name if table is not None else '?'}: {where}"
    if kind.startswith("modify_"):
        _, _, table, column, _existing, in_database, in_models = diff
        return (f"column {table}.{column}: {kind.removeprefix('modify_')} is {in_database!r} in the database, "
                f"{in_models!r} in the models")
    return repr(diff)


# ---------------------------------------------------------------------------------------- adoption


def _adopt(app: Flask) -> str | None:
    """Stamp the baselines of a database made by ``create_all`` before migrations (no alembic_version).

    A baseline revision names the tables it creates in ``created_before_migrations``; it is stamped
    when they all exist. Only when the core's is: a database without the core's tables is not one.
    """
    inspector = sa.inspect(db.engine)
    tables = set(inspector.get_table_names())
    if VERSION_TABLE in tables:
        with db.engine.connect() as connection:
            if MigrationContext.configure(connection).get_current_heads():
                return None
    script = _script(app)
    stamps, names = [], []
    for rev in script.walk_revisions():
        wanted = set(getattr(rev.module, "created_before_migrations", ()))
        if not wanted:
            continue
        present = wanted & tables
        if present and present != wanted:
            raise SchemaError(
                f"the database has some tables of revision {rev.revision} but not {', '.join(sorted(wanted - present))}: "
                "it was not made by hookshop init (restore a backup, or create the missing tables and run "
                f"`hookshop db stamp {rev.revision}`)")
        if present:
            stamps.append(rev.revision)
            names.extend(sorted(rev.branch_labels) or [rev.revision])
    if CORE_BASELINE not in stamps:
        return None
    # a plugin's baseline depends on the core's: stamping it stamps the core's too (Alembic refuses both)
    below = {rev.revision for stamped in stamps for rev in script.iterate_revisions(stamped, "base")
             if rev.revision != stamped}
    _run(command.stamp, alembic_config(app), [rev for rev in stamps if rev not in below])
    return (f"adopted a database made before migrations: stamped the baselines of {', '.join(sorted(set(names)))}, "
            "then upgraded")


# ----------------------------------------------------------------------------------------- revisions


def revision(app: Flask, message: str, branch: str = CORE, *, autogenerate: bool = True,
             rev_id: str | None = None) -> Path | None:
    """Write a new revision on ``branch`` (the core's or a loaded plugin's) and return its file.

    With ``autogenerate`` it holds what the models have and the database (at every head) has not, for
    that branch's tables only; nothing is written when there is no difference. A plugin's first revision
    starts its branch in its package's ``migrations/versions``; a plugin's revision depends on the core's
    head when its branch does not already stand on it (it was written against that schema).
    """
    with app.app_context():
        owner = next((o for o in owners(app) if o.name == branch and o.loaded), None)
        if owner is None:
            names = ", ".join(o.name for o in owners(app) if o.loaded)
            raise SchemaError(f"no branch {branch!r}: name the core or a loaded plugin ({names})")
        owner.versions.mkdir(parents=True, exist_ok=True)
        script = _script(app)
        options = {}
        if branch in _branch_heads(app, script, loaded_only=False):
            options["head"] = f"{branch}@head"
            core_head = script.get_revision(f"{CORE}@head").revision
            if branch != CORE and core_head not in _applied(script, (script.get_revision(f"{branch}@head").revision,)):
                # written against the core at its head: it runs after it
                options["depends_on"] = core_head
        else:
            options.update(head="base", branch_label=branch, version_path=str(owner.versions))
            if branch != CORE:
                options["depends_on"] = script.get_revision(f"{CORE}@head").revision
        rev_id = rev_id or _next_revision_id(script, branch, message)
        if len(rev_id) > REVISION_ID_LENGTH:
            raise SchemaError(f"revision id {rev_id!r} is longer than {REVISION_ID_LENGTH} characters")
        config = alembic_config(app, tables=set(owned_tables(app, branch)), autogenerate=autogenerate)
        written = _run(command.revision, config, message, autogenerate=autogenerate, rev_id=rev_id, **options)
        if isinstance(written, list):
            written = written[0] if written else None
        return Path(written.path) if written is not None else None


def _next_revision_id(script: ScriptDirectory, branch: str, message: str) -> str:
    """``NNNN_<branch>_<words of the message>``, numbered after the branch's highest, 32 characters at most."""
    numbers = [int(found.group(1)) for rev in script.walk_revisions()
               if branch in rev.branch_labels and (found := re.match(r"(\d{4})_", rev.revision))]
    base = f"{max(numbers, default=0) + 1:04d}_{branch}"
    if len(base) > REVISION_ID_LENGTH:
        raise SchemaError(f"the branch name {branch!r} is too long for a numbered revision id: pass --rev-id")
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    room = REVISION_ID_LENGTH - len(base) - 1
    slug = slug[:room].rstrip("_") if room > 0 else ""
    return f"{base}_{slug}" if slug else base


def widen_integers(columns: dict[str, list[str]], to: str = "BIGINT") -> None:
    """For a revision: on PostgreSQL, change these INTEGER columns to ``to`` (``BIGINT``, or ``INTEGER``
    in a downgrade) and each table's id sequence with them. SQLite's INTEGER is 64-bit already, so
    nothing changes there (and no table is copied, which would drop its triggers)."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, names in columns.items():
        sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}).scalar() \
            if "id" in names else None
        if sequence and to.upper() == "INTEGER":  # a sequence narrows before its column
            op.execute(f"ALTER SEQUENCE {sequence} AS integer")
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {name} TYPE {to}" for name in names))
        if sequence and to.upper() != "INTEGER":
            op.execute(f"ALTER SEQUENCE {sequence} AS {to.lower()}")
