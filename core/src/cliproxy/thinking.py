"""Thinking controls shared by every codec: effort levels, token budgets and model-name suffixes.

Dialects disagree on how thinking is requested: OpenAI chat and Responses send an *effort* word, Claude and
Gemini a token *budget*. The IR keeps whichever form the client used (``ReasoningConfig.effort`` or
``.budget``) and each target codec converts with the functions below, so all codecs agree on one table (the
notes say where a value comes from; "reference" values are CLIProxyAPI's, kept so clients that move from it get
the same thinking for the same request):

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

Which model names carry thinking settings (``<model>-thinking-<budget>``, ``<model>-<effort>``) is each
provider's rule (``register_model_rules``); :func:`parse_thinking_suffix` only parses the generic forms.
"""

from __future__ import annotations

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
    "parse_thinking_suffix",
    "resolve_budget",
    "resolve_effort",
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
    """Fit ``budget`` into a model's accepted range; unknown models get it unchanged.

    Upstreams reject budgets outside a model's range instead of clamping them, so every budget sent to a
    budget-based upstream goes through here. A dynamic budget on a model without dynamic thinking becomes the
    middle of its range, and ``0`` on a model that cannot switch thinking off becomes its minimum (a model with
    ``min=128, zero_allowed=False`` gets 128).
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


_THINKING_INFIX: Final = "-thinking-"
_NOTHINKING: Final = "-nothinking"


def parse_thinking_suffix(model: str) -> tuple[str, ReasoningConfig] | None:
    """The generic thinking suffixes of a model name, for providers whose model rules accept them.

    * ``<base>-nothinking`` → budget 0 and no thoughts.
    * ``<base>-thinking-<digits>[anything]`` (the last ``-thinking-``) → that budget; whether thoughts are
      shown is left to the request.

    Case-insensitive; the base keeps the caller's spelling. ``None`` when neither form is present.
    """
    lower = model.lower()
    if lower.endswith(_NOTHINKING) and len(model) > len(_NOTHINKING):
        return model[: -len(_NOTHINKING)], ReasoningConfig(budget=0, include_thoughts=False)
    pos = lower.rfind(_THINKING_INFIX)
    if pos > 0:
        tail = model[pos + len(_THINKING_INFIX) :]
        digits = len(tail) - len(tail.lstrip("0123456789"))
        if digits:
            return model[:pos], ReasoningConfig(budget=int(tail[:digits]))
    return None
