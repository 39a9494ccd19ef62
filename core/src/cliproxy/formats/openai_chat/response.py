"""OpenAI Chat Completions responses ↔ IR (``chat.completion`` bodies; usage and finish-reason mappings).

``Usage.input_tokens`` includes cached tokens (OpenAI ``prompt_tokens`` semantics). Only choice 0 is translated
(``n > 1`` has no counterpart in the other dialects).
"""

from __future__ import annotations

import time
from typing import Final

import msgspec
from msgspec import UNSET

from ... import ir
from ..base import CodecError, new_id
from .request import _args_text, _content_parts
from .wire import (
    _ENC,
    _RESP_DEC,
    _InFunction,
    _InMessage,
    _InUsage,
    _OutChoice,
    _OutCompletion,
    _OutCompletionDetails,
    _OutFunction,
    _OutMessage,
    _OutPromptDetails,
    _OutToolCall,
    _OutUsage,
)

__all__ = ["decode_response", "encode_response"]


_FINISH_IN: Final[dict[str, ir.FinishReason]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _usage_in(u: _InUsage) -> ir.Usage:
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None
    return ir.Usage(
        input_tokens=u.prompt_tokens or 0,
        output_tokens=u.completion_tokens or 0,
        cached_tokens=cached or 0,
        reasoning_tokens=reasoning or 0,
    )


def _usage_out(u: ir.Usage) -> _OutUsage:
    return _OutUsage(
        prompt_tokens=u.input_tokens,
        completion_tokens=u.output_tokens,
        total_tokens=u.input_tokens + u.output_tokens,
        prompt_tokens_details=_OutPromptDetails(u.cached_tokens) if u.cached_tokens else UNSET,
        completion_tokens_details=_OutCompletionDetails(u.reasoning_tokens) if u.reasoning_tokens else UNSET,
    )


def _finish_out(reason: ir.FinishReason, saw_tool: bool) -> str:
    # OpenAI has no "error" finish reason; some upstreams say "stop" even after emitting tool calls.
    if reason == "error":
        return "stop"
    if reason == "stop" and saw_tool:
        return "tool_calls"
    return reason


# --------------------------------------------------------------------------------------------- response


def decode_response(body: bytes) -> ir.Response:
    try:
        r = _RESP_DEC.decode(body)
    except msgspec.DecodeError as e:
        raise CodecError(f"invalid chat completion response: {e}") from None
    if r.error is not None:
        raise CodecError(f"upstream error: {r.error.message}")
    parts: list[ir.Part] = []
    finish: ir.FinishReason = "stop"
    choice = next((c for c in r.choices or () if c.index == 0), None)
    if choice is not None:
        msg = choice.message or choice.delta or _InMessage()
        reasoning = msg.reasoning_content or (msg.reasoning if isinstance(msg.reasoning, str) else None)
        if reasoning:
            parts.append(ir.ReasoningPart(text=reasoning))
        if isinstance(msg.content, str):
            if msg.content:
                parts.append(ir.TextPart(msg.content))
        elif msg.content is not None:
            parts.extend(p for p in _content_parts(msg.content, "choices[0].message") if isinstance(p, ir.TextPart))
        for tc in msg.tool_calls or ():
            fn = tc.function or _InFunction()
            parts.append(
                ir.ToolCallPart(id=tc.id or new_id("call_"), name=fn.name or "", arguments=_args_text(fn.arguments))
            )
        finish = _FINISH_IN.get(choice.finish_reason or "stop", "stop")
        if finish == "stop" and any(isinstance(p, ir.ToolCallPart) for p in parts):
            finish = "tool_calls"
    return ir.Response(
        id=r.id or new_id("chatcmpl-"),
        model=r.model or "",
        created=r.created or 0,
        parts=parts,
        finish_reason=finish,
        usage=_usage_in(r.usage) if r.usage is not None else None,
    )


def encode_response(resp: ir.Response) -> bytes:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[_OutToolCall] = []
    for p in resp.parts:
        if isinstance(p, ir.TextPart):
            text.append(p.text)
        elif isinstance(p, ir.ReasoningPart):
            if p.text:
                reasoning.append(p.text)
        elif isinstance(p, ir.ToolCallPart):
            calls.append(
                _OutToolCall(
                    id=p.id,
                    type="function",
                    function=_OutFunction(name=p.name, arguments=p.arguments or "{}"),
                )
            )
    message = _OutMessage(
        role="assistant",
        content="".join(text) if text else None,
        reasoning_content="".join(reasoning) if reasoning else UNSET,
        tool_calls=calls or UNSET,
    )
    out = _OutCompletion(
        id=resp.id or new_id("chatcmpl-"),
        object="chat.completion",
        created=resp.created or int(time.time()),
        model=resp.model,
        choices=[_OutChoice(index=0, message=message, finish_reason=_finish_out(resp.finish_reason, bool(calls)))],
        usage=_usage_out(resp.usage) if resp.usage is not None else UNSET,
    )
    return _ENC.encode(out)
