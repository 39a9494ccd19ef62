"""Hook implementations of the openai-compat plugin: the ``openai-compatibility`` section and its executor."""

from __future__ import annotations

from cliproxy import hookimpl
from cliproxy.config import Settings
from cliproxy.credentials import Credential, ModelAlias, stable_id, unique_id
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import ConfigRegistrar, ExecutorRegistrar

from .config import CONFIG_KEY, OpenAICompat, check_entries
from .executor import OpenAICompatExecutor

EXECUTOR = "openai-compat"


@hookimpl
def register_config(register: ConfigRegistrar) -> None:
    register(CONFIG_KEY, list[OpenAICompat], default=[], check=check_entries)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return OpenAICompatExecutor(services.http)

    register(EXECUTOR, factory)


def entry_credentials(entry: OpenAICompat) -> list[Credential]:
    """One credential per key (a key-less entry still yields one, for local servers without auth)."""
    keys: list[tuple[str | None, str | None]] = [
        (e.api_key.strip() or None, e.proxy_url.strip() or None) for e in entry.api_key_entries
    ]
    if not keys:
        keys = [(k.strip() or None, None) for k in entry.api_keys if k.strip()]
    if not keys:
        keys = [(None, None)]
    models = tuple(ModelAlias(m.name.strip(), m.alias.strip()) for m in entry.models if m.name or m.alias)
    out: list[Credential] = []
    seen: dict[str, int] = {}
    for key, proxy in keys:
        out.append(
            Credential(
                id=unique_id(stable_id(f"openai-compatibility:{entry.name}", key, entry.base_url, proxy), seen),
                provider=entry.name.lower(),
                executor=EXECUTOR,
                label=entry.name,
                api_key=key,
                base_url=entry.base_url,
                proxy_url=proxy,
                headers=dict(entry.headers),
                models=models,
                attributes={"owned_by": entry.name, "model_type": "openai-compatibility"},
                # ``<name>://<any model>``: a router like OpenRouter serves far more models than anyone lists.
                dynamic_prefix=entry.name,
            )
        )
    return out


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    out: list[Credential] = []
    entries: list[OpenAICompat] = settings.section(CONFIG_KEY) or []
    for entry in entries:
        out.extend(entry_credentials(entry))
    return out
