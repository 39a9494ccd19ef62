from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.ir import ReasoningConfig
from cliproxy.registries import ThinkingSupport
from cliproxy.thinking import (
    EFFORT_BUDGETS,
    budget_to_effort,
    effort_to_budget,
    normalize_budget,
    parse_thinking_suffix,
    resolve_budget,
    resolve_effort,
)


@pytest.mark.parametrize(
    ("effort", "budget"),
    [
        ("none", 0),
        ("minimal", 512),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
        ("xhigh", 32768),
        ("auto", -1),
        ("HIGH", 24576),
        ("turbo", -1),  # unknown words are dynamic, as in the reference
    ],
)
def test_effort_to_budget(effort: str, budget: int) -> None:
    assert effort_to_budget(effort) == budget


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (-1, "auto"),
        (-5, "auto"),
        (0, "none"),
        (1, "low"),
        (1024, "low"),
        (1025, "medium"),
        (8192, "medium"),
        (8193, "high"),
        (24576, "high"),
        (31999, "high"),
        (10**6, "high"),
    ],
)
def test_budget_to_effort_bands(budget: int, effort: str) -> None:
    assert budget_to_effort(budget) == effort


@pytest.mark.parametrize("effort", ["none", "low", "medium", "high", "auto"])
def test_common_efforts_survive_a_round_trip(effort: str) -> None:
    assert budget_to_effort(effort_to_budget(effort)) == effort


@given(st.integers(min_value=-(2**31), max_value=2**31))
def test_budget_to_effort_is_total_and_stable(budget: int) -> None:
    effort = budget_to_effort(budget)
    assert effort in {"auto", "none", "low", "medium", "high"}
    # The representative budget of that effort lands in the same band.
    assert budget_to_effort(effort_to_budget(effort)) == effort


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_budget_to_effort_is_monotonic(a: int, b: int) -> None:
    order = ["none", "low", "medium", "high"]
    lo, hi = sorted((a, b))
    assert order.index(budget_to_effort(lo)) <= order.index(budget_to_effort(hi))


def test_effort_table_is_ordered() -> None:
    levels = ["none", "minimal", "low", "medium", "high", "xhigh"]
    budgets = [EFFORT_BUDGETS[e] for e in levels]
    assert budgets == sorted(budgets)


def test_resolve_prefers_the_clients_own_form() -> None:
    assert resolve_budget(None) is None and resolve_effort(None) is None
    assert resolve_budget(ReasoningConfig()) is None and resolve_effort(ReasoningConfig()) is None
    both = ReasoningConfig(effort="low", budget=20000)
    assert resolve_budget(both) == 20000
    assert resolve_effort(both) == "low"
    assert resolve_budget(ReasoningConfig(effort="medium")) == 8192
    assert resolve_effort(ReasoningConfig(budget=31999)) == "high"
    assert resolve_effort(ReasoningConfig(effort="High")) == "high"


PRO = ThinkingSupport(min=128, max=32768, zero_allowed=False, dynamic_allowed=True)
FLASH = ThinkingSupport(min=0, max=24576, zero_allowed=True, dynamic_allowed=True)
NO_DYNAMIC = ThinkingSupport(min=1024, max=8192, zero_allowed=False, dynamic_allowed=False)


@pytest.mark.parametrize(
    ("budget", "support", "expected"),
    [
        (-1, None, -1),
        (50000, None, 50000),
        (-1, PRO, -1),
        (-1, NO_DYNAMIC, (1024 + 8192) // 2),
        (0, PRO, 128),
        (0, FLASH, 0),
        (50000, PRO, 32768),
        (50000, FLASH, 24576),
        (10, PRO, 128),
        (4096, PRO, 4096),
        (-1, ThinkingSupport(min=0, max=0), -1),
    ],
)
def test_normalize_budget(budget: int, support: ThinkingSupport | None, expected: int) -> None:
    assert normalize_budget(budget, support) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("m-2.5-flash-nothinking", ("m-2.5-flash", ReasoningConfig(budget=0, include_thoughts=False))),
        ("m-2.5-pro-thinking-4096", ("m-2.5-pro", ReasoningConfig(budget=4096))),
        ("m-2.5-flash-thinking-12k", ("m-2.5-flash", ReasoningConfig(budget=12))),
        ("M-2.5-Flash-Thinking-300", ("M-2.5-Flash", ReasoningConfig(budget=300))),
        ("M-Flash-NoThinking", ("M-Flash", ReasoningConfig(budget=0, include_thoughts=False))),
        ("m-x-thinking-1-thinking-77", ("m-x-thinking-1", ReasoningConfig(budget=77))),
        ("m-2.5-pro-thinking-", None),
        ("m-2.5-pro-thinking-x1", None),
        ("-thinking-100", None),
        ("-nothinking", None),
        ("m-2.5-pro", None),
        ("gpt-5-high", None),
    ],
)
def test_parse_thinking_suffix(model: str, expected: tuple[str, ReasoningConfig] | None) -> None:
    """Only the generic forms; which providers read them (and any model quirks) is each plugin's model rule."""
    assert parse_thinking_suffix(model) == expected
