"""Hook implementations of the qwen plugin: catalog, executor, login/refresh and ``type: "qwen"`` auth files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import AuthenticatorRegistrar, ExecutorRegistrar, ModelRegistrar

from .auth import QwenAuthenticator, credential_from_data
from .executor import EXECUTOR, QwenExecutor
from .models import CATALOG, PROVIDER


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return QwenExecutor(services)

    register(EXECUTOR, factory)


@hookimpl
def register_authenticators(register: AuthenticatorRegistrar) -> None:
    register(QwenAuthenticator())


@hookimpl
def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None:
    """CLIProxyAPI's Qwen files (``access_token``, ``refresh_token``, ``resource_url``, ``email``) load as is."""
    if str(data.get("type") or "").lower() != PROVIDER:
        return None
    return credential_from_data(path, data)
