"""Thinking controls shared by every codec: effort levels, token budgets and model-name suffixes.

Dialects disagree on how thinking is requested: OpenAI chat and Responses send an *effort* word, Claude and
Gemini a token *budget*. The IR keeps whichever form the client used (``ReasoningConfig.effort`` or
``.budget``) and each target codec converts with the functions below, so all codecs agree on one table
(spec §4.0.3):

=========  ==========  ============================================================================
effort     budget      notes
=========  ==========  ============================================================================
none       0           thinking disabled
minimal    512         Claude needs at least 1024, its codec clamps
low        1024        OpenAI-chat → Claude/Gemini reference value
medium     8192
high       24576       Claude reference value; Gemini 2.5 Flash maximum (Pro clamps up to 32768 only if asked)
xhigh      32768       Gemini 2.5 Pro maximum
auto       -1          dynamic: the model decides (Claude targets substitute 8192)
=========  ==========  ============================================================================

Any other effort word maps to ``-1`` (the reference treats unknown efforts as dynamic).

The reverse direction uses bands so that every common budget lands on an effort every OpenAI-style upstream
accepts (``minimal`` and ``xhigh`` are model-specific, so they are never produced):

===============  ======
budget           effort
===============  ======
< 0              auto
0                none
1 … 1024         low
1025 … 8192      medium
> 8192           high
===============  ======
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from .ir import ReasoningConfig

if TYPE_CHECKING:
    from .registries import ThinkingSupport

__all__ = [
    "DYNAMIC_BUDGET",
    "EFFORT_BUDGETS",
    "budget_to_effort",
    "effort_to_budget",
    "normalize_budget",
    "resolve_budget",
    "resolve_effort",
    "split_thinking_suffix",
]

#: Budget value meaning "let the model decide".
DYNAMIC_BUDGET: Final = -1

EFFORT_BUDGETS: Final[dict[str, int]] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "auto": DYNAMIC_BUDGET,
}


def effort_to_budget(effort: str) -> int:
    """Token budget for an effort word (case-insensitive); unknown words are dynamic (``-1``)."""
    return EFFORT_BUDGETS.get(effort.lower(), DYNAMIC_BUDGET)


def budget_to_effort(budget: int) -> str:
    """Effort word for a token budget, by the bands in the module docstring."""
    if budget < 0:
        return "auto"
    if budget == 0:
        return "none"
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


def resolve_budget(cfg: ReasoningConfig | None) -> int | None:
    """The budget a budget-based target should send: the explicit budget wins over a converted effort."""
    if cfg is None:
        return None
    if cfg.budget is not None:
        return cfg.budget
    if cfg.effort is not None:
        return effort_to_budget(cfg.effort)
    return None


def resolve_effort(cfg: ReasoningConfig | None) -> str | None:
    """The effort an effort-based target should send: the explicit effort wins over a converted budget."""
    if cfg is None:
        return None
    if cfg.effort is not None:
        return cfg.effort.lower()
    if cfg.budget is not None:
        return budget_to_effort(cfg.budget)
    return None


def normalize_budget(budget: int, support: ThinkingSupport | None) -> int:
    """Fit ``budget`` into a model's accepted range (spec §4.0.3); unknown models get it unchanged.

    A dynamic budget on a model without dynamic thinking becomes the middle of its range, and ``0`` on a model
    that cannot switch thinking off becomes its minimum (e.g. ``gemini-2.5-pro`` → 128).
    """
    if support is None or (support.min == 0 and support.max == 0):
        return budget
    if budget < 0:
        if support.dynamic_allowed:
            return DYNAMIC_BUDGET
        mid = (support.min + support.max) // 2
        if mid <= 0:
            return 0 if support.zero_allowed else support.min
        return mid
    if budget == 0:
        return 0 if support.zero_allowed else support.min
    return max(support.min, min(support.max, budget))


_GPT5_EFFORT = re.compile(r"^(gpt-5)-(minimal|low|medium|high)$|^(gpt-5-codex)-(low|medium|high)$", re.IGNORECASE)
_THINKING_INFIX = "-thinking-"
_NOTHINKING = "-nothinking"


def split_thinking_suffix(model: str) -> tuple[str, ReasoningConfig | None]:
    """Strip a thinking suffix from a client model name (spec §2.2, providers spec §1.9).

    * ``gemini-…-nothinking`` → budget 0 and no thoughts (128 for ``gemini-2.5-pro``, which cannot turn
      thinking off).
    * ``gemini-…-thinking-<digits>[…]`` (last occurrence) → that budget; thoughts left to the request.
    * ``gpt-5-<minimal|low|medium|high>`` / ``gpt-5-codex-<low|medium|high>`` → base model plus that effort.

    Returns ``(model, None)`` when there is no suffix, so callers can use the result unconditionally. The
    returned config *overrides* whatever the request body asked for: the suffix is the more specific
    instruction.
    """
    lower = model.lower()
    if lower.startswith("gemini-"):
        if lower.endswith(_NOTHINKING):
            base = model[: -len(_NOTHINKING)]
            budget = 128 if base.lower().startswith("gemini-2.5-pro") else 0
            return base, ReasoningConfig(budget=budget, include_thoughts=False)
        pos = lower.rfind(_THINKING_INFIX)
        if pos > 0:
            tail = model[pos + len(_THINKING_INFIX) :]
            digits = len(tail) - len(tail.lstrip("0123456789"))
            if digits:
                return model[:pos], ReasoningConfig(budget=int(tail[:digits]))
        return model, None
    m = _GPT5_EFFORT.match(model)
    if m is not None:
        base, effort = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return base, ReasoningConfig(effort=effort.lower())
    return model, None
