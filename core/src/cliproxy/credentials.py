"""Credentials: one upstream account or API key, as parsed from config or from an ``auth-dir`` file."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["Credential", "ModelAlias", "stable_id"]


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
    #: Provider-specific values (``compat_name``, ``project_id`` ...).
    attributes: dict[str, Any] = {}
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
