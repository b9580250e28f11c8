"""The pluggy plugin manager: entry points of the group ``hookshop.plugins``.

Discovery happens once per app (never per request). A plugin implementing a
hook name that neither the core nor a plugin (``hookshop_addhooks``) declares
fails start-up with a message naming the plugin. ``HOOKSHOP_PLUGINS_DISABLED`` (comma separated names) keeps plugins
out; ``HOOKSHOP_PLUGINS_ALLOWED``, when set, loads only the plugins it names (the core's own always);
a plugin whose ``plugin_setup`` returns a reason is disabled too. ``HOOKSHOP_TRACE_PLUGINS=1`` logs every
hook call with the plugins that ran and its time (``trace``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from engine import contracts, hookspecs, plugin_settings
from engine.domain.privacy import redact_text
from engine.errors import PluginError

log = logging.getLogger("hookshop.plugins")
GROUP = "hookshop.plugins"
CORE_PLUGINS = ("engine.payments_manual",)


@dataclass
class PluginInfo:
    name: str
    module: str
    enabled: bool
    core: bool = False
    reason: str | None = None
    hooks: list[str] = field(default_factory=list)
    version: str | None = None
    # the plugin object as registered (kept when plugin_setup disables it: its tables and migrations stay
    # known); None when HOOKSHOP_PLUGINS_DISABLED kept it from being imported at all
    plugin: object = field(default=None, repr=False, compare=False)

    def as_dict(self, config=None) -> dict:
        """What ``GET /plugins`` answers; with ``config`` also the declared settings (secrets masked)."""
        found = {"name": self.name, "module": self.module, "enabled": self.enabled, "core": self.core,
                 "reason": self.reason, "hooks": self.hooks, "version": self.version}
        if config is not None:
            declared = plugin_settings.of(self.plugin)
            found["settings"] = declared.describe(config) if declared else []
            found["missing_settings"] = declared.missing(config) if declared else []
        return found


def _hooks_of(pm: pluggy.PluginManager, plugin) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _register_checked(pm: pluggy.PluginManager, plugin, name: str) -> None:
    """Register ``plugin``; its ``hookshop_addhooks`` adds its own hookspecs at once (a historic hook).
    Hooks without a spec are checked once every plugin is in (``_check_specs``)."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        # adding a spec checks the implementations registered before it: the culprit may be another plugin
        culprit = (pm.get_name(exc.plugin) or name) if exc.plugin is not None else name
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        raise PluginError(f"plugin {culprit!r} is invalid: {exc}") from exc


def _check_specs(pm: pluggy.PluginManager) -> None:
    """Every hook implementation has a spec: the core's (engine/hookspecs.py) or one a plugin added.
    ``@hookimpl(optionalhook=True)`` may wait for a spec that never comes (its plugin is not installed)."""
    for hook_name, caller in sorted(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                raise PluginError(f"plugin {impl.plugin_name!r} implements unknown hooks: {hook_name}")


def _kept_out(name: str, disabled, allowed) -> str | None:
    """Why a plugin is not loaded (the disabled list wins over the allow-list), or None."""
    if name in disabled:
        return "disabled by HOOKSHOP_PLUGINS_DISABLED"
    if allowed is not None and name not in allowed:
        return "not in HOOKSHOP_PLUGINS_ALLOWED"
    return None


def discover(disabled=(), extra_plugins=(), allowed=None) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Build the manager: the core's own plugins, the entry points, then ``extra_plugins``.

    ``extra_plugins`` is a list of ``(name, object)`` registered as if they had
    an entry point (tests and embedding use it). ``allowed`` (None: all): the
    only plugins to load.
    """
    import importlib

    pm = pluggy.PluginManager("hookshop")
    pm.add_hookspecs(hookspecs)
    # each plugin's own hookspecs, added as it registers (historic: replayed for every later plugin)
    pm.hook.hookshop_addhooks.call_historic(kwargs={"pluginmanager": pm})
    infos: list[PluginInfo] = []
    for module_name in CORE_PLUGINS:
        module = importlib.import_module(module_name)
        name = module_name.rsplit(".", 1)[-1]
        _register_checked(pm, module, name)
        infos.append(PluginInfo(name, module_name, True, core=True, hooks=_hooks_of(pm, module), plugin=module))
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        version = ep.dist.version if ep.dist else None
        reason = _kept_out(ep.name, disabled, allowed)
        if reason:
            infos.append(PluginInfo(ep.name, ep.value, False, reason=reason, version=version))
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must name itself
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
        _register_checked(pm, plugin, ep.name)
        infos.append(PluginInfo(ep.name, ep.value, True, hooks=_hooks_of(pm, plugin), version=version, plugin=plugin))
    for name, plugin in extra_plugins:
        reason = _kept_out(name, disabled, allowed)
        if reason:
            infos.append(PluginInfo(name, repr(plugin), False, reason=reason))
            continue
        _register_checked(pm, plugin, name)
        infos.append(PluginInfo(name, getattr(plugin, "__name__", type(plugin).__name__), True,
                                hooks=_hooks_of(pm, plugin), plugin=plugin))
    _check_specs(pm)
    return pm, infos


TRACE = logging.getLogger("hookshop.plugins.trace")


def log_hook_call(hook: str, plugins: list[str], elapsed_ms: float, exception: BaseException | None = None,
                  event_id: int | None = None) -> None:
    """One line of the hook trace: the hook, the plugins that ran, the time, whether it raised (never the
    arguments: they hold customers' data)."""
    where = f" #{event_id}" if event_id is not None else ""
    TRACE.info("hook %s%s: %s in %.2f ms%s", hook, where, ", ".join(plugins) or "no plugin", elapsed_ms,
               f" (raised {type(exception).__name__})" if exception is not None else "",
               extra={"hook": hook, "plugins": list(plugins), "duration_ms": round(elapsed_ms, 3),
                      "raised": exception is not None, "event_id": event_id})


def trace(pm: pluggy.PluginManager):
    """Log every call through ``pm.hook`` (contract hooks; stage hooks are delivered one plugin at a time by
    engine/jobs.py, which logs each the same way). Returns the undo function."""
    import time

    started: dict[int, list[float]] = {}

    def before(hook_name, hook_impls, kwargs):
        started.setdefault(threading.get_ident(), []).append(time.perf_counter())

    def after(outcome, hook_name, hook_impls, kwargs):
        stack = started.get(threading.get_ident()) or [time.perf_counter()]
        log_hook_call(hook_name, [impl.plugin_name for impl in hook_impls],
                      (time.perf_counter() - stack.pop()) * 1000, outcome.exception)

    return pm.add_hookcall_monitoring(before, after)


def setup(pm: pluggy.PluginManager, infos: list[PluginInfo], app) -> None:
    """Call each plugin's ``plugin_setup``; unregister those that give a reason not to run."""
    by_name = {info.name: info for info in infos}
    for impl in pm.hook.plugin_setup.get_hookimpls():
        try:
            reason = impl.function(app=app)
        except Exception as exc:
            reason = f"setup failed: {exc}"
        if reason:
            info = by_name.get(impl.plugin_name)
            log.warning("plugin %s is disabled: %s", impl.plugin_name, redact_text(reason))
            pm.unregister(name=impl.plugin_name)
            if info:
                info.enabled, info.reason = False, str(reason)


def collect(pm: pluggy.PluginManager, hook_name: str) -> list:
    """Flatten the lists returned by a ``register_*`` contract hook."""
    items: list = []
    for result in getattr(pm.hook, hook_name)():
        items.extend(result or [])
    return items


def collect_checked(pm: pluggy.PluginManager, hook_name: str, protocol: type) -> list:
    """``collect``, one plugin at a time (in pluggy's calling order), each object checked against
    ``protocol`` (``engine.contracts.check``): an object that does not satisfy it fails start-up with a
    ``PluginError`` naming the plugin, the object, the Protocol and the member."""
    items: list = []
    everyone = pm.get_plugins()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        alone = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in everyone if p is not impl.plugin])
        for result in alone():  # through pluggy, so HOOKSHOP_TRACE_PLUGINS still logs the call
            for item in result or []:
                contracts.check(item, protocol, impl.plugin_name)
                items.append(item)
    return items


@dataclass
class Registry:
    """What discovery found, kept on ``app.extensions["hookshop"]`` for the app's life."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo]
    providers: dict[str, contracts.PaymentProvider] = field(default_factory=dict)
    carriers: dict[str, contracts.Carrier] = field(default_factory=dict)
    channels: dict[str, contracts.SalesChannel] = field(default_factory=dict)
    exporters: dict[str, contracts.Exporter] = field(default_factory=dict)
    task_kinds: dict = field(default_factory=dict)  # engine.retry_queue.TaskKind by name

    def refresh(self) -> None:
        """Collect the registered objects, each checked against its Protocol (``engine.contracts``)."""
        pm = self.pm
        self.providers = {p.name: p for p in collect_checked(pm, "register_payment_providers", contracts.PaymentProvider)}
        self.carriers = {c.name: c for c in collect_checked(pm, "register_carriers", contracts.Carrier)}
        self.channels = {c.name: c for c in collect_checked(pm, "register_channels", contracts.SalesChannel)}
        self.exporters = {e.format: e for e in collect_checked(pm, "register_exporters", contracts.Exporter)}
        from engine.jobs import task_kind as stage_hook_kind  # the core's own kind: the stage-hook relay
        from engine.retry_queue import check_kinds  # the queue imports this module: imported when used

        self.task_kinds = check_kinds([stage_hook_kind(), *collect(pm, "register_task_kinds")])


def registry() -> Registry:
    """The current app's plugin registry."""
    from flask import current_app

    return current_app.extensions["hookshop"]
