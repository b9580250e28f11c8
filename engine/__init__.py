"""hookshop: a plugin-based headless commerce engine.

The public API for plugin authors is one module, ``engine.plugin_api``: a plugin
imports nothing else from the core (docs/plugins.md, "The public API for plugins").
"""

import pluggy

hookspec = pluggy.HookspecMarker("hookshop")
hookimpl = pluggy.HookimplMarker("hookshop")


def create_app(config=None):
    """The Flask app factory (``flask --app engine`` finds it here)."""
    from engine.app import create_app as _create_app

    return _create_app(config)


__all__ = ["hookspec", "hookimpl", "create_app"]
