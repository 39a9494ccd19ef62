"""Hook implementations of the codex plugin: catalog, executor, ChatGPT login, and credentials from
``codex-api-key`` entries and ``type: "codex"`` auth files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import AuthenticatorRegistrar, ExecutorRegistrar, ModelRegistrar

from .auth import CodexAuthenticator, credential_from_auth_file
from .executor import DEFAULT_BASE_URL, CodexExecutor
from .models import CATALOG, PROVIDER

EXECUTOR = "codex"


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return CodexExecutor(services.http, services)

    register(EXECUTOR, factory)


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``codex-api-key`` entry.

    The reference dropped entries without ``base-url``; they default to ``https://api.openai.com/v1`` here
    (spec §5.3), and the id still hashes the configured value so it is stable either way.
    """
    return api_key_credentials(
        settings.codex_api_key,
        section="codex-api-key",
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "openai", "model_type": "openai"},
        default_base_url=DEFAULT_BASE_URL,
    )


@hookimpl
def register_authenticators(register: AuthenticatorRegistrar) -> None:
    register(CodexAuthenticator())


@hookimpl
def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None:
    """``type: "codex"`` auth files: written by ``cliproxy login codex`` or by CLIProxyAPI, read unchanged."""
    return credential_from_auth_file(path, data)
