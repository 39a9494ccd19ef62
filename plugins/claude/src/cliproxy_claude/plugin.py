"""Hook implementations of the claude plugin: catalog, executor and credentials from ``claude-api-key``."""

from __future__ import annotations

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import ExecutorRegistrar, ModelRegistrar

from .executor import ClaudeExecutor
from .models import CATALOG, PROVIDER

EXECUTOR = "claude"


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
    """One credential per ``claude-api-key`` entry; ids follow spec §3.6 (``claude:apikey`` over key + base)."""
    return api_key_credentials(
        settings.claude_api_key,
        section="claude-api-key",
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "anthropic", "model_type": "claude"},
    )
