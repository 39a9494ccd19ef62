"""Hook implementations of the codex plugin: catalog, executor and credentials from ``codex-api-key``."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from cliproxy import hookimpl
from cliproxy.config import CodexKey, Settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.logging import get_logger
from cliproxy.protocols import Executor, ExecutorServices
from cliproxy.registries import ExecutorRegistrar, ModelInfo, ModelRegistrar

from .executor import DEFAULT_BASE_URL, CodexExecutor
from .models import CATALOG, PROVIDER

EXECUTOR = "codex"
log = get_logger("cliproxy.codex")


@hookimpl
def register_models(register: ModelRegistrar, settings: Settings) -> None:
    for info in CATALOG:
        register(PROVIDER, info)


@hookimpl
def register_executors(register: ExecutorRegistrar, settings: Settings) -> None:
    def factory(services: ExecutorServices) -> Executor:
        return CodexExecutor(services.http)

    register(EXECUTOR, factory)


def entry_models(entry: CodexKey, catalog: Iterable[ModelInfo] = CATALOG) -> tuple[ModelAlias, ...] | None:
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
    """One credential per ``codex-api-key`` entry.

    The reference dropped entries without ``base-url``; they default to ``https://api.openai.com/v1`` here
    (spec §5.3), and the id still hashes the configured value so it is stable either way.
    """
    out: list[Credential] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(settings.codex_api_key):
        key = entry.api_key.strip()
        if not key:
            log.warning("codex-api-key entry without api-key ignored", index=i)
            continue
        base = entry.base_url.strip()
        cid = stable_id("codex:apikey", key, base)
        n = seen.get(cid, 0)
        seen[cid] = n + 1
        out.append(
            Credential(
                id=cid if n == 0 else f"{cid}-{n}",
                provider=PROVIDER,
                executor=EXECUTOR,
                label="codex-apikey",
                api_key=key,
                base_url=base or DEFAULT_BASE_URL,
                proxy_url=entry.proxy_url.strip() or None,
                headers={k.strip(): v.strip() for k, v in entry.headers.items() if k.strip() and v.strip()},
                models=entry_models(entry),
                attributes={"owned_by": "openai", "model_type": "openai"},
            )
        )
    return out
