"""Hook implementations of the gemini plugin: config sections, catalog, model rule, executor, credentials.

The Gemini API keys have no quota fallbacks: the preview-model switch on a 429 belongs to Gemini CLI
(Cloud Code Assist) subscriptions, whose own plugin registers it for its own provider.
"""

from __future__ import annotations

from typing import Final

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.provider_config import ProviderKey
from cliproxy.registries import (
    ConfigRegistrar,
    ExecutorRegistrar,
    ModelRegistrar,
    ModelRuleRegistrar,
)

from .executor import GeminiExecutor
from .models import CATALOG, PROVIDER, model_rule

EXECUTOR = "gemini"
CONFIG_KEY: Final = "gemini-api-key"
#: CLIProxyAPI's older plain list of keys, merged into ``gemini-api-key``.
LEGACY_KEY: Final = "generative-language-api-key"


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    register(CONFIG_KEY, list[ProviderKey], default=[])
    register(LEGACY_KEY, list[str], default=[])


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_model_rules(register: ModelRuleRegistrar, settings: Settings) -> None:
    register(PROVIDER, model_rule)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return GeminiExecutor(services.http)

    register(EXECUTOR, factory)


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per distinct key of ``gemini-api-key`` and of the legacy ``generative-language-api-key``."""
    return api_key_credentials(
        gemini_keys(settings),
        section=CONFIG_KEY,
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "google", "model_type": "gemini"},
    )


def gemini_keys(settings: Settings) -> list[ProviderKey]:
    """``gemini-api-key`` entries, then the legacy plain keys, each key once (the first entry wins).

    CLIProxyAPI merged both lists the same way, so a key listed in both (or twice) is one credential, not two
    credentials sharing one quota.
    """
    seen: set[str] = set()
    out: list[ProviderKey] = []
    entries: list[ProviderKey] = settings.section(CONFIG_KEY) or []
    for entry in entries:
        key = entry.api_key.strip()
        if key and key not in seen:
            seen.add(key)
            out.append(entry)
    legacy: list[str] = settings.section(LEGACY_KEY) or []
    for value in legacy:
        key = value.strip()
        if key and key not in seen:
            seen.add(key)
            out.append(ProviderKey(api_key=key))
    return out
