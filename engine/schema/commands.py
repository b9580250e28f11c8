"""The schema commands: upgrade (adopting a database made before migrations), downgrade, stamp, current."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from flask import Flask

from engine.db import db
from engine.errors import SchemaError
from engine.schema.owners import (
    CORE_BASELINE,
    VERSION_TABLE,
    _applied,
    _branch_heads,
    _current,
    _run,
    _script,
    alembic_config,
)


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
