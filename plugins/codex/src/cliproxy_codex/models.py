"""Static OpenAI/Codex catalog with effort variants: CLIProxyAPI's GPT-5 set plus the GPT-5.1 family.

An effort variant (``gpt-5-high``) is a client-facing id only, for clients that can pick a model but not a
reasoning effort: the executor sends its base model with ``reasoning.effort`` set to the suffix, overriding
whatever effort the request carried. :data:`EFFORT_VARIANTS` is derived from the catalog so the two cannot
drift apart.
"""

from __future__ import annotations

from typing import Final

from cliproxy.ir import ReasoningConfig
from cliproxy.registries import ModelInfo, ThinkingSupport

__all__ = ["CATALOG", "EFFORT_VARIANTS", "PROVIDER", "by_id", "model_rule", "split_effort"]

PROVIDER: Final = "codex"


def _family(
    base: str,
    display: str,
    version: str,
    created: int,
    levels: tuple[str, ...],
    variants: tuple[str, ...],
    *,
    context: int = 400_000,
    output: int = 128_000,
) -> list[tuple[ModelInfo, str | None]]:
    thinking = ThinkingSupport(levels=levels)

    def info(model_id: str, name: str) -> ModelInfo:
        return ModelInfo(
            id=model_id,
            owned_by="openai",
            type="openai",
            display_name=name,
            version=version,
            created=created,
            input_token_limit=context,
            output_token_limit=output,
            thinking=thinking,
        )

    out: list[tuple[ModelInfo, str | None]] = [(info(base, display), None)]
    out.extend((info(f"{base}-{effort}", f"{display} ({effort.capitalize()})"), effort) for effort in variants)
    return out


_GPT5_LEVELS = ("minimal", "low", "medium", "high")
_CODEX_LEVELS = ("low", "medium", "high")
_GPT51_LEVELS = ("none", "low", "medium", "high")

_ENTRIES: Final = [
    *_family("gpt-5", "GPT 5", "gpt-5-2025-08-07", 1754524800, _GPT5_LEVELS, _GPT5_LEVELS),
    *_family("gpt-5-codex", "GPT 5 Codex", "gpt-5-2025-09-15", 1757894400, _CODEX_LEVELS, _CODEX_LEVELS),
    *_family("gpt-5.1", "GPT 5.1", "gpt-5.1-2025-11-13", 1762992000, _GPT51_LEVELS, _GPT51_LEVELS),
    *_family("gpt-5.1-codex", "GPT 5.1 Codex", "gpt-5.1-2025-11-13", 1762992000, _CODEX_LEVELS, _CODEX_LEVELS),
    *_family(
        "gpt-5.1-codex-mini",
        "GPT 5.1 Codex Mini",
        "gpt-5.1-2025-11-13",
        1762992000,
        ("medium", "high"),
        ("medium", "high"),
    ),
    *_family(
        "gpt-5.1-codex-max",
        "GPT 5.1 Codex Max",
        "gpt-5.1-codex-max",
        1763510400,
        ("low", "medium", "high", "xhigh"),
        ("low", "medium", "high", "xhigh"),
    ),
    (
        ModelInfo(
            id="codex-mini-latest",
            owned_by="openai",
            type="openai",
            display_name="Codex Mini",
            version="1.0",
            created=1747353600,
            input_token_limit=200_000,
            output_token_limit=100_000,
        ),
        None,
    ),
]

CATALOG: Final[tuple[ModelInfo, ...]] = tuple(info for info, _ in _ENTRIES)

#: Client id of an effort variant (lower-case) → (base model, effort).
EFFORT_VARIANTS: Final[dict[str, tuple[str, str]]] = {
    info.id.lower(): (info.id[: -len(effort) - 1], effort) for info, effort in _ENTRIES if effort is not None
}

_BY_ID: Final = {m.id.lower(): m for m in CATALOG}


def by_id(model: str) -> ModelInfo | None:
    return _BY_ID.get(model.lower())


def split_effort(model: str) -> tuple[str, str | None]:
    """``gpt-5-high`` → ``("gpt-5", "high")``; any other model → ``(model, None)``."""
    hit = EFFORT_VARIANTS.get(model.lower())
    return hit if hit is not None else (model, None)


def model_rule(model: str) -> tuple[str, ReasoningConfig] | None:
    """``gpt-5-high`` → ``gpt-5`` with effort ``high``, for credentials that list their own models.

    With the catalog the variants are model ids of their own; a key configured with ``models: [{name: gpt-5}]``
    serves only ``gpt-5``, and this rule keeps its effort variants working.
    """
    base, effort = split_effort(model)
    return (base, ReasoningConfig(effort=effort)) if effort is not None else None
