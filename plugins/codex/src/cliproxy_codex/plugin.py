"""Hook implementations of the codex plugin: the ``codex-api-key`` section, catalog, executor, credentials."""

from __future__ import annotations

from typing import Final

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, api_key_credentials
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.provider_config import ProviderKey
from cliproxy.registries import ConfigRegistrar, ExecutorRegistrar, ModelRegistrar, ModelRuleRegistrar

from .executor import DEFAULT_BASE_URL, CodexExecutor
from .models import CATALOG, PROVIDER, model_rule

EXECUTOR = "codex"
CONFIG_KEY: Final = "codex-api-key"


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    register(CONFIG_KEY, list[ProviderKey], default=[])


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
        return CodexExecutor(services.http)

    register(EXECUTOR, factory)


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``codex-api-key`` entry.

    CLIProxyAPI silently dropped entries without ``base-url``, which lost keys people had configured; here they
    default to ``https://api.openai.com/v1``, and the id still hashes the configured value (empty) so it stays
    stable whether or not the default changes.
    """
    return api_key_credentials(
        settings.section(CONFIG_KEY) or [],
        section=CONFIG_KEY,
        provider=PROVIDER,
        executor=EXECUTOR,
        catalog=CATALOG,
        attributes={"owned_by": "openai", "model_type": "openai"},
        default_base_url=DEFAULT_BASE_URL,
    )
