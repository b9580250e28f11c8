"""Comparing the models with the database, and writing new revisions."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from engine.db import db
from engine.errors import SchemaError
from engine.schema.environment import _include, _narrow_sequences
from engine.schema.owners import (
    CORE,
    REVISION_ID_LENGTH,
    _applied,
    _branch_heads,
    _current,
    _run,
    _script,
    alembic_config,
    owned_tables,
    owners,
)


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
    """``NNNN_<branch>_<words of the message>``, numbered after the branch's highest (a lettered one such as
    ``0014b_...`` counts as its number), 32 characters at most."""
    numbers = [int(found.group(1)) for rev in script.walk_revisions()
               if branch in rev.branch_labels and (found := re.match(r"(\d{4})[a-z]?_", rev.revision))]
    base = f"{max(numbers, default=0) + 1:04d}_{branch}"
    if len(base) > REVISION_ID_LENGTH:
        raise SchemaError(f"the branch name {branch!r} is too long for a numbered revision id: pass --rev-id")
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    room = REVISION_ID_LENGTH - len(base) - 1
    slug = slug[:room].rstrip("_") if room > 0 else ""
    return f"{base}_{slug}" if slug else base
