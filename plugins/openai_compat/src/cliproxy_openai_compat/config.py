"""The ``openai-compatibility`` section: named OpenAI-compatible providers, each with its keys and models."""

from __future__ import annotations

from typing import Final

import msgspec

from cliproxy.provider_config import ModelEntry
from cliproxy.registries import ConfigIssues

__all__ = ["CONFIG_KEY", "OpenAICompat", "OpenAICompatKey", "check_entries"]

CONFIG_KEY: Final = "openai-compatibility"


class OpenAICompatKey(msgspec.Struct, rename="kebab", omit_defaults=True):
    api_key: str = ""
    #: Overrides the global ``proxy-url`` for this key.
    proxy_url: str = ""


class OpenAICompat(msgspec.Struct, rename="kebab", omit_defaults=True):
    #: Provider name: the routing key (lower-cased) and the ``<name>://<model>`` prefix (as written).
    name: str = ""
    base_url: str = ""
    api_key_entries: list[OpenAICompatKey] = []
    #: Legacy flat key list, used only when ``api-key-entries`` is empty.
    api_keys: list[str] = []
    models: list[ModelEntry] = []
    headers: dict[str, str] = {}


def check_entries(entries: list[OpenAICompat], issues: ConfigIssues) -> list[OpenAICompat]:
    """Trim names and URLs; a nameless entry is an error, one without ``base-url`` is dropped with a warning."""
    kept: list[OpenAICompat] = []
    for i, entry in enumerate(entries):
        entry.name = entry.name.strip()
        entry.base_url = entry.base_url.strip()
        if not entry.name:
            issues.error([i, "name"], "required")
        if not entry.base_url:
            issues.warn([i], f"entry {entry.name!r} has no base-url; ignored")
            continue
        kept.append(entry)
    return kept
