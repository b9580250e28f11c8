"""``hookshop db ...``: schema migrations (Alembic through Flask-Migrate), the core's branch and each plugin's."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup


@click.group("db", cls=AppGroup)  # an AppGroup: its commands run in the app context
def db_group():
    """Schema migrations (Alembic through Flask-Migrate): the core's branch and each plugin's."""


def _schema_call(fn, *args, **kwargs):
    from engine.errors import SchemaError

    try:
        return fn(current_app._get_current_object(), *args, **kwargs)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc


@db_group.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade_command(revision):
    """Upgrade to REVISION (default `heads`: the core and every enabled plugin at its head).

    A database made before migrations existed is adopted first (its baselines are stamped).
    """
    _upgrade_schema(revision)
    click.echo(f"schema at {revision} in {_db_name()}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade_command(revision):
    """Revert to REVISION: `core@-1`, `<plugin>@base`, a revision id, or `base` (drops every table)."""
    from engine import schema

    for note in _schema_call(schema.downgrade, revision) or ["nothing to revert"]:
        click.echo(note)


@db_group.command("check")
def db_check_command():
    """Exit non-zero when the loaded models and the migrations (the database at head) differ."""
    from engine import schema

    problems = _schema_call(schema.differences)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{len(problems)} difference(s) between the models and the migrations: "
                                   "write a revision (`hookshop db revision -m ...`) or upgrade")
    click.echo("the models and the migrations agree")


@db_group.command("current")
def db_current_command():
    """The revision of each branch in the database."""
    from engine import schema

    for line in _schema_call(schema.current):
        click.echo(line)


@db_group.command("stamp")
@click.argument("revision")
def db_stamp_command(revision):
    """Record REVISION as applied without running it (for a database made by hand)."""
    from engine import schema

    _schema_call(schema.stamp, revision)
    click.echo(f"stamped {revision}")


@db_group.command("heads")
def db_heads_command():
    """The head revision of every branch."""
    from alembic import command

    from engine import schema

    command.heads(schema.alembic_config(current_app._get_current_object()), verbose=False)


@db_group.command("history")
def db_history_command():
    """Every revision of every branch, newest first."""
    from alembic import command

    from engine import schema

    command.history(schema.alembic_config(current_app._get_current_object()))


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="what the revision changes, e.g. 'refunds table'")
@click.option("--branch", default="core", show_default=True, help="core, or the name of the plugin that owns the tables")
@click.option("--autogenerate/--empty", default=True, show_default=True,
              help="write what the models have and the database at head has not (--empty: a blank revision)")
@click.option("--rev-id", default=None, help="the revision id (default NNNN_<branch>_<message>, 32 characters at most)")
def db_revision_command(message, branch, autogenerate, rev_id):
    """Write a new revision for developers; review it, then test it from the previous head."""
    from engine import schema

    path = _schema_call(schema.revision, message, branch, autogenerate=autogenerate, rev_id=rev_id)
    if path is None:
        click.echo("the models and the database agree: no revision written (--empty writes a blank one)")
        return
    click.echo(f"wrote {path}")
    click.echo("review it before you commit it: autogenerate does not see renames, CHECK constraints or triggers")


def _upgrade_schema(revision: str = "heads") -> None:
    from engine import schema
    from engine.errors import SchemaError

    try:
        notes = schema.upgrade(current_app._get_current_object(), revision)  # type: ignore[attr-defined]
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    for note in notes:
        click.echo(note)


def _db_name() -> str:
    from engine.db import db

    return db.engine.url.render_as_string(hide_password=True)
