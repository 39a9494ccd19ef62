"""Static Claude catalog: the models CLIProxyAPI listed plus the 4.5 generation.

Thinking ranges: Anthropic wants ``budget_tokens >= 1024`` and strictly below ``max_tokens``, which itself cannot
exceed the model's output limit; ``0`` means "thinking disabled", which every thinking model accepts.
"""

from __future__ import annotations

from typing import Final

from cliproxy.registries import ModelInfo, ThinkingSupport

__all__ = ["CATALOG", "PROVIDER", "by_id"]

PROVIDER: Final = "claude"
_INPUT = 200_000


def _model(model_id: str, display: str, created: int, output: int, *, thinking: bool = True) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        owned_by="anthropic",
        type="claude",
        display_name=display,
        created=created,
        input_token_limit=_INPUT,
        output_token_limit=output,
        thinking=ThinkingSupport(min=1024, max=output - 1, zero_allowed=True) if thinking else None,
    )


CATALOG: Final[tuple[ModelInfo, ...]] = (
    _model("claude-opus-4-5-20251101", "Claude 4.5 Opus", 1761955200, 64_000),
    _model("claude-sonnet-4-5-20250929", "Claude 4.5 Sonnet", 1759104000, 64_000),
    _model("claude-haiku-4-5-20251001", "Claude 4.5 Haiku", 1759276800, 64_000),
    # Undated aliases the Messages API accepts and current Claude Code versions send.
    _model("claude-opus-4-5", "Claude 4.5 Opus", 1761955200, 64_000),
    _model("claude-sonnet-4-5", "Claude 4.5 Sonnet", 1759104000, 64_000),
    _model("claude-haiku-4-5", "Claude 4.5 Haiku", 1759276800, 64_000),
    _model("claude-opus-4-1-20250805", "Claude 4.1 Opus", 1722945600, 32_000),
    _model("claude-opus-4-20250514", "Claude 4 Opus", 1715644800, 32_000),
    _model("claude-sonnet-4-20250514", "Claude 4 Sonnet", 1715644800, 64_000),
    _model("claude-3-7-sonnet-20250219", "Claude 3.7 Sonnet", 1708300800, 64_000),
    _model("claude-3-5-haiku-20241022", "Claude 3.5 Haiku", 1729555200, 8_192, thinking=False),
)

_BY_ID: Final = {m.id.lower(): m for m in CATALOG}


def by_id(model: str) -> ModelInfo | None:
    return _BY_ID.get(model.lower())
