"""The config entry most provider sections share: one API key with its endpoint, proxy, headers and models.

Provider plugins claim their ``config.yaml`` section through ``register_config`` with this type (or a subclass
that adds fields), so every provider reads ``api-key``/``base-url``/``proxy-url``/``headers``/``models``/
``excluded-models`` the same way, and ``credentials.api_key_credentials`` turns the entries into credentials.
Unknown fields are accepted and reported as warnings, because newer CLIProxyAPI versions add fields to these
sections and their configs must still load.
"""

from __future__ import annotations

import msgspec

__all__ = ["ModelEntry", "ProviderKey"]


class ModelEntry(msgspec.Struct, rename="kebab", omit_defaults=True):
    """One model a key serves: ``name`` is what the upstream calls it, ``alias`` what clients ask for."""

    name: str = ""
    alias: str = ""


class ProviderKey(msgspec.Struct, rename="kebab", omit_defaults=True):
    """One entry of an API-key section (``<provider>-api-key: [ ... ]``)."""

    api_key: str = ""
    #: Empty means the provider's default endpoint.
    base_url: str = ""
    #: Overrides the global ``proxy-url`` for this key.
    proxy_url: str = ""
    #: Sent on every upstream call; they win over the executor's own headers.
    headers: dict[str, str] = {}
    #: When set, the key serves only these models, under their aliases; else the provider's whole catalog.
    models: list[ModelEntry] = []
    #: Glob patterns (case-insensitive) of model ids this key must not serve.
    excluded_models: list[str] = []
