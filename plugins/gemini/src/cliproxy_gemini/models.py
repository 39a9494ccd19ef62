"""Static Gemini catalog and model-name rules: CLIProxyAPI's base set plus the Gemini 3 previews.

A model "supports thinking" iff it has ``thinking`` metadata; the executor strips ``thinkingConfig`` for the
others (image models reject it). Ranges are Google's documented ones: budgets outside them are rejected.
"""

from __future__ import annotations

from typing import Final

from cliproxy.ir import ReasoningConfig
from cliproxy.registries import ModelInfo, ThinkingSupport
from cliproxy.thinking import parse_thinking_suffix

__all__ = ["CATALOG", "PROVIDER", "by_id", "model_rule"]

PROVIDER: Final = "gemini"
_METHODS: Final = ("generateContent", "countTokens")
_IN: Final = 1_048_576


def _model(
    model_id: str,
    display: str,
    version: str,
    output: int,
    thinking: ThinkingSupport | None,
    description: str,
    created: int,
) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        owned_by="google",
        type="gemini",
        display_name=display,
        description=description,
        version=version,
        created=created,
        input_token_limit=_IN,
        output_token_limit=output,
        thinking=thinking,
        supported_methods=_METHODS,
    )


_FLASH = ThinkingSupport(min=0, max=24576, zero_allowed=True, dynamic_allowed=True)
_PRO = ThinkingSupport(min=128, max=32768, zero_allowed=False, dynamic_allowed=True)
_LITE = ThinkingSupport(min=512, max=24576, zero_allowed=True, dynamic_allowed=True)
# Gemini 3 takes ``thinkingLevel``; budgets are still accepted and mapped by Google.
_G3_PRO = ThinkingSupport(min=128, max=32768, zero_allowed=False, dynamic_allowed=True, levels=("low", "high"))
_G3_FLASH = ThinkingSupport(
    min=128, max=32768, zero_allowed=False, dynamic_allowed=True, levels=("minimal", "low", "medium", "high")
)

#: id, display name, version, output limit, thinking, description, created (unix).
_ROWS: Final[tuple[tuple[str, str, str, int, ThinkingSupport | None, str, int], ...]] = (
    ("gemini-2.5-flash", "Gemini 2.5 Flash", "001", 65_536, _FLASH, "Stable Gemini 2.5 Flash", 1750118400),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", "2.5", 65_536, _PRO, "Stable Gemini 2.5 Pro", 1750118400),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite", "2.5", 65_536, _LITE, "Stable Gemini 2.5 Flash-Lite",
     1753142400),
    ("gemini-2.5-flash-image-preview", "Gemini 2.5 Flash Image Preview", "2.5", 8_192, None,
     "Gemini 2.5 Flash image generation (preview)", 1756166400),
    ("gemini-2.5-flash-image", "Gemini 2.5 Flash Image", "2.5", 8_192, None, "Gemini 2.5 Flash image generation",
     1759363200),
    ("gemini-3-pro-preview", "Gemini 3 Pro Preview", "3.0", 65_536, _G3_PRO, "Gemini 3 Pro (preview)", 1763424000),
    ("gemini-3-flash-preview", "Gemini 3 Flash Preview", "3.0", 65_536, _G3_FLASH, "Gemini 3 Flash (preview)",
     1765929600),
)  # fmt: skip

CATALOG: Final[tuple[ModelInfo, ...]] = tuple(_model(*row) for row in _ROWS)

_BY_ID: Final = {m.id.lower(): m for m in CATALOG}


def by_id(model: str) -> ModelInfo | None:
    return _BY_ID.get(model.lower())


def model_rule(model: str) -> tuple[str, ReasoningConfig] | None:
    """Thinking suffixes on Gemini names: ``gemini-…-nothinking`` and ``gemini-…-thinking-<budget>``.

    Gemini CLI users and CLIProxyAPI configs pick thinking through the model name, since many clients cannot send
    a budget. Only ``gemini-`` names carry them. ``gemini-2.5-pro`` cannot switch thinking off, so its
    ``-nothinking`` asks for the smallest budget it accepts (128) rather than 0, which it would reject.
    """
    if not model.lower().startswith("gemini-"):
        return None
    hit = parse_thinking_suffix(model)
    if hit is None:
        return None
    base, cfg = hit
    if cfg.include_thoughts is False and base.lower().startswith("gemini-2.5-pro"):
        return base, ReasoningConfig(budget=128, include_thoughts=False)
    return hit
