"""Mappings shared by Claude requests, responses and streams: stop reasons, usage and tool arguments.

``Usage.input_tokens`` in the IR *includes* cache reads and writes (OpenAI/Gemini semantics); Claude's own
``input_tokens`` excludes them, so they are added on decode and subtracted on encode.
"""

from __future__ import annotations

from typing import Final

import msgspec
from msgspec import UNSET

from ... import ir
from .wire import _ARGS_DEC, _EMPTY_OBJECT, NAME, _OutUsage, _Usage

# --------------------------------------------------------------------------------------------- mappings

_STOP_IN: Final[dict[str, ir.FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_OUT: Final[dict[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "end_turn",
    "error": "end_turn",
}


def _usage_in(u: _Usage | None, base: ir.Usage | None = None) -> ir.Usage:
    """Claude usage → IR; ``base`` carries the ``message_start`` numbers a ``message_delta`` may omit."""
    cache_read = (u.cache_read_input_tokens if u else None) or 0
    cache_write = (u.cache_creation_input_tokens if u else None) or 0
    if u is None or u.input_tokens is None:
        if base is not None:
            return ir.Usage(
                input_tokens=base.input_tokens,
                output_tokens=(u.output_tokens if u else None) or base.output_tokens,
                cached_tokens=base.cached_tokens,
                cache_creation_tokens=base.cache_creation_tokens,
            )
        return ir.Usage(output_tokens=(u.output_tokens if u else None) or 0)
    if base is not None and u.cache_read_input_tokens is None and u.cache_creation_input_tokens is None:
        cache_read, cache_write = base.cached_tokens, base.cache_creation_tokens
    return ir.Usage(
        input_tokens=u.input_tokens + cache_read + cache_write,
        output_tokens=u.output_tokens or 0,
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
    )


def _usage_out(u: ir.Usage | None) -> _OutUsage:
    if u is None:
        return _OutUsage(input_tokens=0, output_tokens=0)
    return _OutUsage(
        input_tokens=max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens),
        output_tokens=u.output_tokens,
        cache_creation_input_tokens=u.cache_creation_tokens if u.cache_creation_tokens else UNSET,
        cache_read_input_tokens=u.cached_tokens if u.cached_tokens else UNSET,
    )


def _args_raw(arguments: str) -> msgspec.Raw:
    """Tool ``input`` must be a JSON object; invalid or empty argument text becomes ``{}`` rather than a 400."""
    text = arguments.strip()
    if not text.startswith("{"):
        return _EMPTY_OBJECT
    try:
        _ARGS_DEC.decode(text)
    except msgspec.DecodeError:
        return _EMPTY_OBJECT
    return msgspec.Raw(text.encode())


def _stop_out(reason: ir.FinishReason, saw_tool: bool) -> str:
    if reason == "stop" and saw_tool:
        return "tool_use"
    return _STOP_OUT[reason]


def _reasoning_sig(p: ir.ReasoningPart | ir.ReasoningDelta) -> str | None:
    return p.signature if p.signature and p.origin in (None, NAME) else None
