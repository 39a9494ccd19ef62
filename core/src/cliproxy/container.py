"""The dependency-injector container: owns every long-lived service and builds the Litestar app.

Tests override providers (``container.plugin_manager.override(...)``) before the app is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers

from .config import Settings, load_settings
from .execute import ExecutionService
from .formats.base import Codec
from .http import HttpClients
from .models import ModelRegistry
from .plugins import PluginHost, make_plugin_manager
from .pool import CooldownPolicy, CredentialPool
from .protocols import Executor, ExecutorServices
from .refresh import TokenRefresher
from .runtime import Runtime, retry_policy
from .watch import ReloadWatcher

__all__ = ["Container"]


def _settings(host: PluginHost, path: str | None, overrides: Mapping[str, Any] | None) -> Settings:
    return load_settings(path, host.config_sections().items, overrides)


def _registry(host: PluginHost, settings: Settings) -> ModelRegistry:
    catalog, _ = host.model_catalog(settings)
    return ModelRegistry(catalog)


def _formats(host: PluginHost) -> dict[str, Codec]:
    return dict(host.formats().items)


def _executors(host: PluginHost, services: ExecutorServices, settings: Settings) -> dict[str, Executor]:
    # Config reloads swap ``services.settings``, so executors that keep ``services`` see the new values.
    return {name: factory(services) for name, factory in host.executors(settings).items.items()}


def _runtime(
    host: PluginHost,
    settings: Settings,
    pool: CredentialPool,
    registry: ModelRegistry,
    http: HttpClients,
    services: ExecutorServices,
    overrides: Mapping[str, Any] | None,
) -> Runtime:
    rt = Runtime(
        host=host,
        settings=settings,
        pool=pool,
        registry=registry,
        http=http,
        overrides=overrides,
        services=services,
    )
    rt.load()
    return rt


def _execution(
    registry: ModelRegistry,
    pool: CredentialPool,
    executors: dict[str, Executor],
    formats: dict[str, Codec],
    host: PluginHost,
    runtime: Runtime,
    refresher: TokenRefresher,
) -> ExecutionService:
    settings = runtime.settings  # the live settings: a reload may have happened before the first request
    svc = ExecutionService(
        registry=registry,
        pool=pool,
        executors=executors,
        formats=formats,
        fallbacks=dict(host.quota_fallbacks(settings).items),
        retry=retry_policy(settings),
    )
    svc.reauthorize = refresher.on_unauthorized
    runtime.bind_execution(svc)
    return svc


def _refresher(host: PluginHost, runtime: Runtime) -> TokenRefresher:
    return TokenRefresher(runtime, dict(host.authenticators().items))


class Container(containers.DeclarativeContainer):
    #: Bootstrap values: ``config_path`` and ``cli_overrides`` (CLI ``--host``/``--port``).
    config = providers.Configuration()

    plugin_manager = providers.Singleton(make_plugin_manager)
    host = providers.Singleton(PluginHost, pm=plugin_manager)
    settings = providers.Singleton(_settings, host=host, path=config.config_path, overrides=config.cli_overrides)
    http = providers.Singleton(HttpClients, default_proxy=settings.provided.proxy_url)
    formats = providers.Singleton(_formats, host=host)
    models = providers.Singleton(_registry, host=host, settings=settings)
    pool = providers.Singleton(
        CredentialPool,
        policy=providers.Factory(CooldownPolicy, disable_cooling=settings.provided.disable_cooling),
    )
    services = providers.Singleton(ExecutorServices, http=http, settings=settings)
    executors = providers.Singleton(_executors, host=host, services=services, settings=settings)
    runtime = providers.Singleton(
        _runtime,
        host=host,
        settings=settings,
        pool=pool,
        registry=models,
        http=http,
        services=services,
        overrides=config.cli_overrides,
    )
    refresher = providers.Singleton(_refresher, host=host, runtime=runtime)
    watcher = providers.Singleton(ReloadWatcher, runtime=runtime)
    execution = providers.Singleton(
        _execution,
        registry=models,
        pool=pool,
        executors=executors,
        formats=formats,
        host=host,
        runtime=runtime,
        refresher=refresher,
    )
