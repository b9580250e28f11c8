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

The package: ``owners`` (who owns tables, the Alembic plumbing), ``environment`` (env.py's body),
``commands`` (upgrade with adoption, downgrade, stamp, current), ``revisions`` (the check, new revisions).
"""

from engine.schema.commands import current, downgrade, stamp, upgrade
from engine.schema.environment import AlterSequenceOp, run_environment, widen_integers
from engine.schema.owners import (
    CORE,
    CORE_BASELINE,
    MIGRATIONS,
    REVISION_ID_LENGTH,
    VERSION_TABLE,
    Owner,
    _script,
    alembic_config,
    init_app,
    owned_tables,
    owners,
    version_locations,
)
from engine.schema.revisions import _next_revision_id, differences, revision

__all__ = [
    "CORE",
    "CORE_BASELINE",
    "MIGRATIONS",
    "REVISION_ID_LENGTH",
    "VERSION_TABLE",
    "AlterSequenceOp",
    "Owner",
    "_next_revision_id",
    "_script",
    "alembic_config",
    "current",
    "differences",
    "downgrade",
    "init_app",
    "owned_tables",
    "owners",
    "revision",
    "run_environment",
    "stamp",
    "upgrade",
    "version_locations",
    "widen_integers",
]
