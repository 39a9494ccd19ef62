"""Hook implementations of the iflow plugin: catalog, executor, login/refresh and ``type: "iflow"`` auth files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import AuthenticatorRegistrar, ExecutorRegistrar, ModelRegistrar

from .auth import IFlowAuthenticator, credential_from_data
from .executor import EXECUTOR, IFlowExecutor
from .models import CATALOG, PROVIDER


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return IFlowExecutor(services)

    register(EXECUTOR, factory)


@hookimpl
def register_authenticators(register: AuthenticatorRegistrar) -> None:
    register(IFlowAuthenticator())


@hookimpl
def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None:
    """CLIProxyAPI's iFlow files (tokens, ``api_key``, ``email``) load as is; the API key serves the calls."""
    if str(data.get("type") or "").lower() != PROVIDER:
        return None
    return credential_from_data(path, data)
