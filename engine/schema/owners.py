"""Who owns tables (the core and each plugin), where their revisions live, and the Alembic plumbing every
schema command shares."""

from __future__ import annotations

import importlib.util
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask
from flask_migrate import Migrate

from engine.db import db
from engine.errors import SchemaError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
CORE = "core"
CORE_BASELINE = "0001_core_baseline"
VERSION_TABLE = "alembic_version"
REVISION_ID_LENGTH = 32  # alembic_version.version_num is a VARCHAR(32)


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
    file = getattr(module, "__file__", None) if module is not None else None
    if module is None or not file:
        return None
    if hasattr(module, "__path__"):
        package = module.__name__
    else:
        package = module.__name__.rpartition(".")[0] or module.__name__
    return package, Path(file).resolve().parent


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
    for mapper in db.Model.registry.mappers:  # type: ignore[attr-defined]  # Flask-SQLAlchemy's stub lacks it
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










def _run(fn, config, *args, **kwargs):
    try:
        return fn(config, *args, **kwargs)
    except CommandError as exc:
        raise SchemaError(str(exc)) from exc






















