"""``HookRecorder``: a plugin that implements every stage hook and records what it is handed."""

from __future__ import annotations

import functools
import inspect

from engine import hookimpl, hookspecs


def stage_hook_names() -> list[str]:
    """The core's stage hooks (the hookspecs with an ``event`` argument), in the stages' order."""
    return [name for name, spec in vars(hookspecs).items()
            if getattr(spec, "hookshop_spec", None) is not None and "event" in inspect.signature(spec).parameters]


def _brief(value):
    """What a hook saw, kept after the session that loaded it is gone: plain values as they are, a model
    as its type, id and status (and its ``sku``/``number``/``tracking_number`` when it has one)."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    brief = {"type": type(value).__name__, "id": getattr(value, "id", None)}
    for attribute in ("status", "number", "sku", "tracking_number", "amount"):
        if hasattr(value, attribute):
            brief[attribute] = getattr(value, attribute)
    return brief


class HookRecorder:
    """Registered by the kit's ``hookshop_app`` as ``hook_recorder``. ``calls`` lists every stage hook call
    as ``{"hook", "event", <argument>: brief}``; ``hooks()`` their names in order; ``of(name)`` the calls of
    one hook; ``clear()`` forgets them. Set ``fail[hook] = n`` to make the next ``n`` calls of ``hook``
    raise (a plugin that fails: the engine retries it alone)."""

    def __init__(self):
        self.calls: list[dict] = []
        self.fail: dict[str, int] = {}
        for name in stage_hook_names():  # instance attributes: pluggy reads the spec's own argument names
            setattr(self, name, self._recording(name, getattr(hookspecs, name)))

    def _recording(self, name, spec):
        params = tuple(inspect.signature(spec).parameters)

        def record(*args, **kwargs):
            kwargs.update(zip(params, args, strict=False))
            self.calls.append({"hook": name, **{key: (dict(value) if key == "event" else _brief(value))
                                                for key, value in kwargs.items()}})
            if self.fail.get(name):
                self.fail[name] -= 1
                raise RuntimeError(f"hook_recorder: {name} fails on purpose")

        functools.update_wrapper(record, spec, updated=())
        return hookimpl(record)

    def hooks(self) -> list[str]:
        return [call["hook"] for call in self.calls]

    def of(self, name: str) -> list[dict]:
        return [call for call in self.calls if call["hook"] == name]

    def clear(self) -> None:
        self.calls.clear()
