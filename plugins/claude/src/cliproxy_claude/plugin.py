"""Hook implementations of the claude plugin: catalog, executor, ``claude-api-key`` entries, and Claude Code
subscription logins (``cliproxy login claude``) with their ``type: claude`` auth files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import AuthenticatorRegistrar, ExecutorRegistrar, ModelRegistrar

from .executor import ClaudeExecutor
from .models import CATALOG, PROVIDER
from .oauth import ClaudeAuthenticator, credential_from_data

EXECUTOR = "claude"


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return ClaudeExecutor(services.http, services)

    register(EXECUTOR, factory)


@hookimpl
def register_authenticators(register: AuthenticatorRegistrar) -> None:
    register(ClaudeAuthenticator())


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``claude-api-key`` entry; ids hash the key and base URL (``claude:apikey:<hash>``)."""
    return api_key_credentials(
        settings.claude_api_key,
        section="claude-api-key",
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "anthropic", "model_type": "claude"},
    )


@hookimpl
def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None:
    """``type: claude`` files, as ``cliproxy login claude`` and CLIProxyAPI's ``--claude-login`` write them."""
    if str(data.get("type") or "").lower() != PROVIDER:
        return None
    return credential_from_data(path, data)
