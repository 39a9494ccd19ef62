"""Quota fallbacks (spec §2.4): on a 429 retry the same credential on the next model of a table.

The reference hard-coded Gemini CLI preview ids that Google has since retired, so the table is configuration
(``gemini-cli-preview-fallbacks``) and empty by default; :data:`REFERENCE_TABLE` documents the old one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from cliproxy.credentials import Credential
from cliproxy.registries import QuotaFallback

__all__ = ["CONFIG_KEY", "REFERENCE_TABLE", "make_fallback"]

CONFIG_KEY: Final = "gemini-cli-preview-fallbacks"

REFERENCE_TABLE: Final[dict[str, list[str]]] = {
    "gemini-2.5-pro": ["gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05"],
    "gemini-2.5-flash": ["gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20"],
    "gemini-2.5-flash-lite": ["gemini-2.5-flash-lite-preview-06-17"],
}


def make_fallback(table: Mapping[str, Sequence[str]]) -> QuotaFallback:
    """``fallback(cred, model, attempt)``: the model after ``model`` in its chain, or ``None`` at the end.

    Core passes the model of the attempt that just got a 429 (the requested one first, then each fallback),
    so the chain position is found from the model itself; ``attempt`` only bounds the walk.
    """
    chains: dict[str, list[str]] = {}
    for requested, fallbacks in table.items():
        chain = [requested.strip().lower(), *(f.strip() for f in fallbacks if f.strip())]
        chains[chain[0]] = chain
    positions: dict[str, tuple[list[str], int]] = {}
    for chain in chains.values():
        for i, model in enumerate(chain):
            positions.setdefault(model.lower(), (chain, i))

    def fallback(cred: Credential, model: str, attempt: int) -> str | None:
        found = positions.get(model.lower())
        if found is None:
            return None
        chain, i = found
        if i + 1 >= len(chain) or attempt >= len(chain) - 1:
            return None
        return chain[i + 1]

    return fallback
