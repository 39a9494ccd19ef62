"""Hook implementations of the gemini plugin: catalog, executor, API-key credentials, quota fallbacks."""

from __future__ import annotations

from typing import Any

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import (
    ConfigRegistrar,
    ExecutorRegistrar,
    ModelRegistrar,
    QuotaFallbackRegistrar,
)

from .executor import GeminiExecutor
from .fallback import CONFIG_KEY, make_fallback
from .models import CATALOG, PROVIDER

EXECUTOR = "gemini"
#: Provider key of Gemini CLI (Cloud Code Assist) OAuth credentials, whose 429s the preview table serves.
GEMINI_CLI = "gemini-cli"


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    register(CONFIG_KEY, dict[str, list[str]], default={})


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return GeminiExecutor(services.http)

    register(EXECUTOR, factory)


@hookimpl
def register_quota_fallbacks(register: QuotaFallbackRegistrar, settings: Settings) -> None:
    """Gemini CLI preview fallbacks (spec §2.4); the API-key provider never had them."""
    table: Any = settings.section(CONFIG_KEY)
    if table:
        register(GEMINI_CLI, make_fallback(table))


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``gemini-api-key`` entry (core already merged, trimmed and de-duplicated them)."""
    return api_key_credentials(
        settings.gemini_api_key,
        section="gemini-api-key",
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "google", "model_type": "gemini"},
    )
