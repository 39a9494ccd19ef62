"""Plugin discovery (entry-point group ``cliproxy``) and the typed facade over ``pm.hook``.

Hooks run here, at startup or on reload, and their registrations are frozen into plain dicts: the request path
never calls pluggy. A plugin that fails to import, has a bad hook signature, or raises inside a hook is
reported by name and skipped; it never takes the server down.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .credentials import Credential
from .logging import get_logger
from .registries import (
    AuthenticatorRegistrar,
    ConfigRegistrar,
    ConfigSection,
    DuplicateRegistration,
    ExecutorRegistrar,
    FormatRegistrar,
    ModelInfo,
    ModelRegistrar,
    ModelRule,
    ModelRuleRegistrar,
    QuotaFallback,
    QuotaFallbackRegistrar,
    Registry,
    RouteRegistrar,
)

if TYPE_CHECKING:
    import click

    from .config import Settings
    from .formats.base import Codec
    from .protocols import Authenticator, ExecutorFactory

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "PluginHost", "PluginInfo", "make_plugin_manager"]

log = get_logger("cliproxy.plugins")

ENTRY_POINT_GROUP = "cliproxy"
#: Core features registered through the same public hooks as third-party plugins.
DEFAULT_PLUGINS = ("cliproxy.formats.builtin",)
DISABLE_ENV = "CLIPROXY_DISABLE_PLUGINS"
TRACE_ENV = "CLIPROXY_TRACE_PLUGINS"


@dataclass(slots=True)
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    builtin: bool = False
    #: Set when the plugin could not be loaded or one of its hooks failed.
    error: str | None = None


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def make_plugin_manager(
    *,
    entry_points: bool = True,
    extra: Iterable[object] = (),
    disabled: Iterable[str] | None = None,
) -> pluggy.PluginManager:
    """Build the plugin manager: built-ins, installed entry points (unless disabled), then ``extra``."""
    pm = pluggy.PluginManager("cliproxy")
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    pm.cliproxy_infos = infos  # type: ignore[attr-defined]
    blocked = set(_csv(os.environ.get(DISABLE_ENV))) | set(disabled or ())
    for name in blocked:
        pm.set_blocked(name)
    for dotted in DEFAULT_PLUGINS:
        module = importlib.import_module(dotted)
        pm.register(module, name=dotted)
        infos[dotted] = PluginInfo(dotted, "cliproxy", _version("cliproxy"), dotted, builtin=True)
    if entry_points:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name,
                dist.metadata["Name"] if dist is not None else None,
                dist.version if dist is not None else None,
                ep.value,
            )
            infos[ep.name] = info
            try:
                plugin = ep.load()
            except Exception as exc:
                info.error = f"import failed: {type(exc).__name__}: {exc}"
                log.error("plugin failed to load; skipped", plugin=ep.name, error=info.error)
                continue
            _register(pm, plugin, ep.name, info)
    for i, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{i}"
        info = PluginInfo(name, module=getattr(plugin, "__module__", None))
        infos[name] = info
        _register(pm, plugin, name, info)
    if os.environ.get(TRACE_ENV):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str, info: PluginInfo) -> None:
    try:
        pm.register(plugin, name=name)
        # Unknown hook names in the plugin (typos) are errors too.
        for caller in pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                raise pluggy.PluginValidationError(plugin, f"unknown hook {caller.name!r}")
    except (pluggy.PluginValidationError, ValueError) as exc:
        info.error = f"invalid plugin: {exc}"
        log.error("plugin rejected; skipped", plugin=name, error=info.error)
        # Only undo our own registration: the same object may already be registered under another name
        # (an entry point also passed in ``extra``), and that registration must survive.
        if pm.get_plugin(name) is plugin:
            pm.unregister(name=name)


def _trace_before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
    log.info("hook call", hook=hook_name, plugins=[i.plugin_name for i in hook_impls])


def _trace_after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
    log.info("hook done", hook=hook_name, error=repr(outcome.exception) if outcome.exception else None)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class PluginHost:
    """Typed facade over ``pm.hook`` (each method runs at startup or reload and returns plain data)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.infos: dict[str, PluginInfo] = getattr(pm, "cliproxy_infos", {})
        for name, plugin in pm.list_name_plugin():
            if name not in self.infos and plugin is not None:
                self.infos[name] = PluginInfo(name, module=getattr(plugin, "__name__", None))

    # ------------------------------------------------------------------ collection helper

    def _each(self, hook_name: str, make_args: Callable[[str], dict[str, Any]]) -> list[tuple[str, Any]]:
        """Call every implementation separately so a failing plugin is named and skipped, not fatal."""
        caller = getattr(self.pm.hook, hook_name)
        results: list[tuple[str, Any]] = []
        for impl in reversed(caller.get_hookimpls()):
            name = impl.plugin_name
            args = make_args(name)
            try:
                results.append((name, impl.function(**{a: args[a] for a in impl.argnames})))
            except DuplicateRegistration:
                raise
            except Exception as exc:
                info = self.infos.setdefault(name, PluginInfo(name))
                info.error = f"{hook_name} failed: {type(exc).__name__}: {exc}"
                log.error(
                    "plugin hook failed; its contribution is skipped", plugin=name, hook=hook_name, error=str(exc)
                )
        return results

    # ------------------------------------------------------------------ hooks

    def config_sections(self) -> Registry[str, ConfigSection]:
        reg: Registry[str, ConfigSection] = Registry("config key")
        self._each("register_config", lambda n: {"register": ConfigRegistrar(n, reg)})
        return reg

    def formats(self) -> Registry[str, Codec]:
        reg: Registry[str, Codec] = Registry("wire format")
        self._each("register_formats", lambda n: {"register": FormatRegistrar(n, reg)})
        return reg

    def model_catalog(self, settings: Settings) -> tuple[dict[str, list[ModelInfo]], dict[str, str]]:
        catalog: dict[str, list[ModelInfo]] = {}
        owners: dict[str, str] = {}
        self._each("register_models", lambda n: {"register": ModelRegistrar(n, catalog, owners), "settings": settings})
        return catalog, owners

    def model_rules(self, settings: Settings) -> Registry[str, ModelRule]:
        reg: Registry[str, ModelRule] = Registry("model rule")
        self._each("register_model_rules", lambda n: {"register": ModelRuleRegistrar(n, reg), "settings": settings})
        return reg

    def executors(self, settings: Settings) -> Registry[str, ExecutorFactory]:
        reg: Registry[str, ExecutorFactory] = Registry("executor")
        self._each("register_executors", lambda n: {"register": ExecutorRegistrar(n, reg), "settings": settings})
        return reg

    def authenticators(self) -> Registry[str, Authenticator]:
        reg: Registry[str, Authenticator] = Registry("authenticator")
        self._each("register_authenticators", lambda n: {"register": AuthenticatorRegistrar(n, reg)})
        return reg

    def quota_fallbacks(self, settings: Settings) -> Registry[str, QuotaFallback]:
        reg: Registry[str, QuotaFallback] = Registry("quota fallback")
        self._each(
            "register_quota_fallbacks",
            lambda n: {"register": QuotaFallbackRegistrar(n, reg), "settings": settings},
        )
        return reg

    def credentials_from_config(self, settings: Settings) -> list[Credential]:
        out: list[Credential] = []
        for _, creds in self._each("credentials_from_config", lambda n: {"settings": settings}):
            out.extend(creds or [])
        return out

    def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
        for name, cred in self._each("credential_from_file", lambda n: {"path": path, "data": data}):
            if cred is not None:
                if not isinstance(cred, Credential):
                    log.error("plugin returned a non-credential", plugin=name, file=path.name)
                    continue
                return cred
        return None

    def routes(self, container: Any) -> tuple[list[Any], list[str]]:
        handlers: list[Any] = []
        owners: list[str] = []
        self._each(
            "register_routes", lambda n: {"register": RouteRegistrar(n, handlers, owners), "container": container}
        )
        return handlers, owners

    def commands(self, cli: click.Group) -> None:
        self._each("register_commands", lambda n: {"cli": cli})

    def lifespans(self, container: Any) -> list[Any]:
        return [cm for _, cm in self._each("lifespan", lambda n: {"container": container}) if cm is not None]

    # ------------------------------------------------------------------ introspection

    def describe(self, settings: Settings) -> list[dict[str, Any]]:
        """What every plugin contributes, for ``cliproxy plugins list``."""
        formats = self.formats()
        executors = self.executors(settings)
        auths = self.authenticators()
        sections = self.config_sections()
        _, model_owners = self.model_catalog(settings)
        out: list[dict[str, Any]] = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda x: (x[0] not in self.infos, x[0])):
            if plugin is None:
                continue
            info = self.infos.get(name, PluginInfo(name))
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            out.append(
                {
                    "name": name,
                    "distribution": info.distribution,
                    "version": info.version,
                    "builtin": info.builtin,
                    "hooks": hooks,
                    "formats": formats.by_owner(name),
                    "executors": executors.by_owner(name),
                    "providers": sorted(p for p, o in model_owners.items() if o == name),
                    "authenticators": auths.by_owner(name),
                    "config_keys": sections.by_owner(name),
                    "error": info.error,
                }
            )
        for name, info in sorted(self.infos.items()):
            if info.error and not any(o["name"] == name for o in out):
                out.append(
                    {
                        "name": name,
                        "distribution": info.distribution,
                        "version": info.version,
                        "builtin": info.builtin,
                        "hooks": [],
                        "formats": [],
                        "executors": [],
                        "providers": [],
                        "authenticators": [],
                        "config_keys": [],
                        "error": info.error,
                    }
                )
        return out
