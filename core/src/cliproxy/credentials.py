"""Credentials: one upstream account or API key, as parsed from config or from an ``auth-dir`` file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from .logging import get_logger

if TYPE_CHECKING:
    from .registries import ModelInfo

__all__ = [
    "Credential",
    "KeyEntry",
    "ModelAlias",
    "api_key_credentials",
    "entry_models",
    "stable_id",
    "unique_id",
]

_log = get_logger("cliproxy.credentials")


class ModelAlias(msgspec.Struct, frozen=True, omit_defaults=True):
    """``name`` is what the upstream calls the model; ``alias`` is what clients ask for (defaults to name)."""

    name: str
    alias: str = ""

    @property
    def client_id(self) -> str:
        return self.alias or self.name


class Credential(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Immutable-by-convention description of one account; runtime state lives in the pool."""

    id: str
    #: Routing key: which models this credential serves is decided per provider (``openrouter``, ``claude``).
    provider: str
    #: Executor that talks to the upstream (several compat providers share ``openai-compat``).
    executor: str
    label: str = ""
    api_key: str | None = None
    base_url: str | None = None
    proxy_url: str | None = None
    headers: dict[str, str] = {}
    #: Client-facing models this credential serves; ``None`` means the provider's static catalog.
    models: tuple[ModelAlias, ...] | None = None
    #: Provider-specific values (``project_id``, ``owned_by`` ...).
    attributes: dict[str, Any] = {}
    #: Clients may ask for ``<dynamic_prefix>://<any model>``: the request goes to this credential's provider
    #: with the model sent verbatim, whether or not it is in any catalog (catch-all upstreams such as routers).
    dynamic_prefix: str | None = None
    #: OAuth token file contents (access/refresh tokens, expiry) for file-backed credentials.
    metadata: dict[str, Any] = {}
    #: Where the credential came from: ``config`` or the auth file path.
    source: str = "config"
    disabled: bool = False

    def upstream_model(self, model: str) -> str:
        """Map a client-facing model id to the upstream name (case-insensitive alias match)."""
        if self.models:
            low = model.lower()
            for m in self.models:
                if m.client_id.lower() == low:
                    return m.name or m.client_id
        return model

    def redacted(self) -> dict[str, Any]:
        """What management/logging may show: never a key or token."""
        return {
            "id": self.id,
            "provider": self.provider,
            "label": self.label,
            "source": self.source,
            "base_url": self.base_url,
            "proxy_url": _redact_url(self.proxy_url),
            "api_key": mask(self.api_key),
        }


def mask(secret: str | None) -> str | None:
    if not secret:
        return None
    if len(secret) <= 8:
        return "***"
    return f"{secret[:3]}***{secret[-2:]}"


def _redact_url(url: str | None) -> str | None:
    if not url or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def stable_id(kind: str, *parts: str | None) -> str:
    """``<kind>:<12 hex>`` over the trimmed parts, so the same config entry keeps its id across reloads."""
    h = hashlib.sha256(kind.encode())
    for p in parts:
        h.update(b"\0")
        h.update((p or "").strip().encode())
    return f"{kind}:{h.hexdigest()[:12]}"


class KeyEntry(Protocol):
    """What ``api_key_credentials`` reads from an entry: ``provider_config.ProviderKey`` or any struct like it."""

    api_key: str
    base_url: str
    proxy_url: str
    headers: dict[str, str]
    models: Any
    excluded_models: list[str]


def entry_models(entry: KeyEntry, catalog: Iterable[ModelInfo]) -> tuple[ModelAlias, ...] | None:
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


def unique_id(cid: str, seen: dict[str, int]) -> str:
    """Identical entries (same key twice) still get distinct ids: ``<id>``, ``<id>-1``, ``<id>-2`` ..."""
    n = seen.get(cid, 0)
    seen[cid] = n + 1
    return cid if n == 0 else f"{cid}-{n}"


def api_key_credentials(
    entries: Iterable[KeyEntry],
    *,
    section: str,
    provider: str,
    executor: str,
    catalog: Iterable[ModelInfo],
    attributes: Mapping[str, Any],
    default_base_url: str | None = None,
) -> list[Credential]:
    """One credential per API-key entry of a config section, ids as in CLIProxyAPI (``<provider>:apikey``)."""
    out: list[Credential] = []
    seen: dict[str, int] = {}
    catalog = list(catalog)
    for i, entry in enumerate(entries):
        key = entry.api_key.strip()
        if not key:
            _log.warning("config entry without api-key ignored", section=section, index=i)
            continue
        base = entry.base_url.strip()
        out.append(
            Credential(
                id=unique_id(stable_id(f"{provider}:apikey", key, base), seen),
                provider=provider,
                executor=executor,
                label=f"{provider}-apikey",
                api_key=key,
                base_url=base or default_base_url,
                proxy_url=entry.proxy_url.strip() or None,
                headers={k.strip(): v.strip() for k, v in entry.headers.items() if k.strip() and v.strip()},
                models=entry_models(entry, catalog),
                attributes=dict(attributes),
            )
        )
    return out
