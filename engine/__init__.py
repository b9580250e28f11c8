"""hookshop: a plugin-based headless commerce engine.

The public API for plugin authors is what this package exports plus the
models (``engine.models``) and services (``engine.services``) documented in
docs/plugins.md.
"""

import pluggy

hookspec = pluggy.HookspecMarker("hookshop")
hookimpl = pluggy.HookimplMarker("hookshop")


def create_app(config=None):
    """The Flask app factory (``flask --app engine`` finds it here)."""
    from engine.app import create_app as _create_app

    return _create_app(config)


__all__ = ["hookspec", "hookimpl", "create_app"]
