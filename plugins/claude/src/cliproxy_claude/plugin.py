"""Hook implementations of the claude plugin: the ``claude-api-key`` section, catalog, executor, credentials."""

from __future__ import annotations

from typing import Final

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.provider_config import ProviderKey
from cliproxy.registries import ConfigRegistrar, ExecutorRegistrar, ModelRegistrar

from .executor import ClaudeExecutor
from .models import CATALOG, PROVIDER

EXECUTOR = "claude"
CONFIG_KEY: Final = "claude-api-key"


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    register(CONFIG_KEY, list[ProviderKey], default=[])


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return ClaudeExecutor(services.http)

    register(EXECUTOR, factory)


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``claude-api-key`` entry.

    Ids hash ``claude:apikey`` with the key and base URL, the way CLIProxyAPI named them, so an entry keeps its
    id (and its cooldowns) across reloads.
    """
    return api_key_credentials(
        settings.section(CONFIG_KEY) or [],
        section=CONFIG_KEY,
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "anthropic", "model_type": "claude"},
    )
