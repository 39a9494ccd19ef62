"""Hook implementations of the claude plugin: catalog, executor and credentials from ``claude-api-key``."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from cliproxy import hookimpl
from cliproxy.config import ClaudeKey, Settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.logging import get_logger
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import ExecutorRegistrar, ModelInfo, ModelRegistrar

from .executor import ClaudeExecutor
from .models import CATALOG, PROVIDER

EXECUTOR = "claude"
log = get_logger("cliproxy.claude")


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return ClaudeExecutor(services.http)

    register(EXECUTOR, factory)


def entry_models(entry: ClaudeKey, catalog: Iterable[ModelInfo] = CATALOG) -> tuple[ModelAlias, ...] | None:
    """The entry's aliases if it lists any, else the catalog; ``excluded-models`` (globs) filter either.

    ``None`` means "the provider catalog" and keeps the catalog's metadata in listings.
    """
    models = tuple(ModelAlias(m.name.strip(), m.alias.strip()) for m in entry.models if m.name or m.alias)
    excluded = [p.strip().lower() for p in entry.excluded_models if p.strip()]
    if not excluded:
        return models or None
    if not models:
        models = tuple(ModelAlias(info.id) for info in catalog)
    return tuple(m for m in models if not any(fnmatchcase(m.client_id.lower(), p) for p in excluded))


@hookimpl
def credentials_from_config(settings: Settings) -> list[Credential]:
    """One credential per ``claude-api-key`` entry; ids follow spec §3.6 (``claude:apikey`` over key + base)."""
    out: list[Credential] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(settings.claude_api_key):
        key = entry.api_key.strip()
        if not key:
            log.warning("claude-api-key entry without api-key ignored", index=i)
            continue
        base = entry.base_url.strip()
        cid = stable_id("claude:apikey", key, base)
        n = seen.get(cid, 0)
        seen[cid] = n + 1
        out.append(
            Credential(
                id=cid if n == 0 else f"{cid}-{n}",
                provider=PROVIDER,
                executor=EXECUTOR,
                label="claude-apikey",
                api_key=key,
                base_url=base or None,
                proxy_url=entry.proxy_url.strip() or None,
                headers={k.strip(): v.strip() for k, v in entry.headers.items() if k.strip() and v.strip()},
                models=entry_models(entry),
                attributes={"owned_by": "anthropic", "model_type": "claude"},
            )
        )
    return out
