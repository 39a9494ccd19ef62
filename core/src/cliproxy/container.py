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
from .runtime import Runtime, retry_policy

__all__ = ["Container"]


def _settings(host: PluginHost, path: str | None, overrides: Mapping[str, Any] | None) -> Settings:
    return load_settings(path, host.config_sections().items, overrides)


def _registry(host: PluginHost, settings: Settings) -> ModelRegistry:
    catalog, _ = host.model_catalog(settings)
    return ModelRegistry(catalog)


def _formats(host: PluginHost) -> dict[str, Codec]:
    return dict(host.formats().items)


def _executors(host: PluginHost, http: HttpClients, settings: Settings) -> dict[str, Executor]:
    services = ExecutorServices(http=http, settings=settings)
    return {name: factory(services) for name, factory in host.executors(settings).items.items()}


def _runtime(
    host: PluginHost, settings: Settings, pool: CredentialPool, registry: ModelRegistry, http: HttpClients
) -> Runtime:
    rt = Runtime(host=host, settings=settings, pool=pool, registry=registry, http=http)
    rt.load()
    return rt


def _execution(
    registry: ModelRegistry,
    pool: CredentialPool,
    executors: dict[str, Executor],
    formats: dict[str, Codec],
    host: PluginHost,
    settings: Settings,
) -> ExecutionService:
    return ExecutionService(
        registry=registry,
        pool=pool,
        executors=executors,
        formats=formats,
        fallbacks=dict(host.quota_fallbacks(settings).items),
        retry=retry_policy(settings),
    )


class Container(containers.DeclarativeContainer):
    #: Bootstrap values: ``config_path`` and ``overrides`` (CLI ``--host``/``--port``).
    config = providers.Configuration()

    plugin_manager = providers.Singleton(make_plugin_manager)
    host = providers.Singleton(PluginHost, pm=plugin_manager)
    settings = providers.Singleton(_settings, host=host, path=config.config_path, overrides=config.overrides)
    http = providers.Singleton(HttpClients, default_proxy=settings.provided.proxy_url)
    formats = providers.Singleton(_formats, host=host)
    models = providers.Singleton(_registry, host=host, settings=settings)
    pool = providers.Singleton(
        CredentialPool, policy=providers.Factory(CooldownPolicy, disable_cooling=settings.provided.disable_cooling)
    )
    executors = providers.Singleton(_executors, host=host, http=http, settings=settings)
    runtime = providers.Singleton(_runtime, host=host, settings=settings, pool=pool, registry=models, http=http)
    execution = providers.Singleton(
        _execution,
        registry=models,
        pool=pool,
        executors=executors,
        formats=formats,
        host=host,
        settings=settings,
    )
