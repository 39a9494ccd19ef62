"""Hook implementations of the gemini plugin: catalog, executor, API-key credentials, quota fallbacks."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from cliproxy import hookimpl
from cliproxy.config import GeminiKey, Settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import (
    ConfigRegistrar,
    ExecutorRegistrar,
    ModelInfo,
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


def entry_models(entry: GeminiKey, catalog: Iterable[ModelInfo] = CATALOG) -> tuple[ModelAlias, ...] | None:
    """The entry's aliases if it lists any, else the catalog; ``excluded-models`` (globs) filter either."""
    models = tuple(ModelAlias(m.name.strip(), m.alias.strip()) for m in entry.models if m.name or m.alias)
    excluded = [p.strip().lower() for p in entry.excluded_models if p.strip()]
    if not excluded:
        return models or None
    if not models:
        models = tuple(ModelAlias(info.id) for info in catalog)
    return tuple(m for m in models if not any(fnmatchcase(m.client_id.lower(), p) for p in excluded))


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``gemini-api-key`` entry (core already merged, trimmed and de-duplicated them)."""
    out: list[Credential] = []
    seen: dict[str, int] = {}
    for entry in settings.gemini_api_key:
        key = entry.api_key.strip()
        if not key:
            continue
        base = entry.base_url.strip()
        cid = stable_id("gemini:apikey", key, base)
        n = seen.get(cid, 0)
        seen[cid] = n + 1
        out.append(
            Credential(
                id=cid if n == 0 else f"{cid}-{n}",
                provider=PROVIDER,
                executor=EXECUTOR,
                label="gemini-apikey",
                api_key=key,
                base_url=base or None,
                proxy_url=entry.proxy_url.strip() or None,
                headers=dict(entry.headers),
                models=entry_models(entry),
                attributes={"owned_by": "google", "model_type": "gemini"},
            )
        )
    return out
