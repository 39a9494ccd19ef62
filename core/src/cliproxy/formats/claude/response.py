"""Anthropic Messages responses ↔ IR; a streamed body (Claude upstreams stream even for non-stream clients)
is folded into one response."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from ... import ir
from ...sse import SSEParser
from ..base import CodecError, new_id
from .mapping import _STOP_IN, _args_raw, _reasoning_sig, _stop_out, _usage_in, _usage_out
from .stream import ClaudeStreamDecoder
from .wire import _ENC, _EVENT_DEC, NAME, _Block, _OutMessage

__all__ = ["decode_response", "encode_response"]


# --------------------------------------------------------------------------------------------- response


def _fold(events: list[ir.Event]) -> ir.Response:
    """Fold a decoded stream into one response: Claude upstreams are streamed even for non-stream clients."""
    rid, model, created = "", "", 0
    parts: list[ir.Part] = []
    tools: dict[int, ir.ToolCallPart] = {}
    usage: ir.Usage | None = None
    finish: ir.FinishReason = "stop"
    closed = True
    for ev in events:
        if isinstance(ev, ir.Start):
            rid, model, created = ev.id, ev.model, ev.created
        elif isinstance(ev, ir.TextDelta):
            last = parts[-1] if parts and not closed else None
            if isinstance(last, ir.TextPart):
                last.text += ev.text
            else:
                parts.append(ir.TextPart(ev.text))
            closed = False
        elif isinstance(ev, ir.ReasoningDelta):
            last = parts[-1] if parts and not closed else None
            if ev.encrypted:
                parts.append(ir.ReasoningPart(encrypted=ev.encrypted, origin=ev.origin))
                closed = True
                continue
            if not isinstance(last, ir.ReasoningPart):
                last = ir.ReasoningPart(origin=ev.origin)
                parts.append(last)
            last.text += ev.text
            if ev.signature:
                last.signature = ev.signature
            closed = False
        elif isinstance(ev, ir.ToolCallStart):
            call = ir.ToolCallPart(id=ev.id, name=ev.name, arguments="")
            tools[ev.index] = call
            parts.append(call)
            closed = True
        elif isinstance(ev, ir.ToolArgsDelta):
            if ev.index in tools:
                tools[ev.index].arguments += ev.json
        elif isinstance(ev, ir.BlockStop):
            closed = True
        elif isinstance(ev, ir.UsageEvent):
            usage = ev.usage
        elif isinstance(ev, ir.Finish):
            finish = ev.reason
        elif isinstance(ev, ir.Error):
            raise CodecError(f"upstream error: {ev.message}")
    for call in tools.values():
        if not call.arguments.strip():
            call.arguments = "{}"
    return ir.Response(id=rid, model=model, created=created, parts=parts, finish_reason=finish, usage=usage)


def decode_response(body: bytes) -> ir.Response:
    stripped = body.lstrip()
    if stripped.startswith((b"event:", b"data:")):
        parser = SSEParser()
        decoder = ClaudeStreamDecoder()
        events: list[ir.Event] = []
        for sse in [*parser.feed(body), *parser.close()]:
            events.extend(decoder.feed(sse))
        events.extend(decoder.close())
        return _fold(events)
    try:
        r = _EVENT_DEC.decode(body)
    except msgspec.DecodeError as e:
        raise CodecError(f"invalid messages response: {e}") from None
    if r.type == "error" and r.error is not None:
        raise CodecError(f"upstream error: {r.error.message}")
    parts: list[ir.Part] = []
    thinking_chars = 0
    for b in r.content or ():
        if b.type == "text" and b.text is not UNSET:
            parts.append(ir.TextPart(b.text))
        elif b.type == "thinking":
            text = b.thinking if b.thinking is not UNSET else ""
            thinking_chars += len(text)
            sig = b.signature if b.signature is not UNSET and b.signature else None
            parts.append(ir.ReasoningPart(text=text, signature=sig, origin=NAME))
        elif b.type == "redacted_thinking" and b.data is not UNSET:
            parts.append(ir.ReasoningPart(encrypted=b.data, origin=NAME))
        elif b.type == "tool_use" and b.id is not UNSET and b.name is not UNSET:
            args = bytes(b.input).decode() if b.input is not UNSET else "{}"
            parts.append(ir.ToolCallPart(id=b.id, name=b.name, arguments=args))
    finish = _STOP_IN.get(r.stop_reason or "end_turn", "stop")
    usage = _usage_in(r.usage) if r.usage is not None else None
    if usage is not None:
        usage.reasoning_tokens = min(thinking_chars // 4, usage.output_tokens)  # Claude reports no split
    ext: dict[str, Any] = {}
    if r.stop_reason == "stop_sequence":
        ext = {NAME: {"stop_sequence": r.stop_sequence}}
    return ir.Response(id=r.id, model=r.model, parts=parts, finish_reason=finish, usage=usage, ext=ext)


def encode_response(resp: ir.Response) -> bytes:
    content: list[_Block] = []
    saw_tool = False
    for p in resp.parts:
        if isinstance(p, ir.TextPart):
            if p.text:
                content.append(_Block(type="text", text=p.text))
        elif isinstance(p, ir.ReasoningPart):
            if p.encrypted and p.origin == NAME:
                content.append(_Block(type="redacted_thinking", data=p.encrypted))
            elif p.text:
                content.append(_Block(type="thinking", thinking=p.text, signature=_reasoning_sig(p) or ""))
        elif isinstance(p, ir.ToolCallPart):
            saw_tool = True
            content.append(_Block(type="tool_use", id=p.id, name=p.name, input=_args_raw(p.arguments)))
        # Tool results and images never appear in assistant output.
    stop_sequence = (resp.ext.get(NAME) or {}).get("stop_sequence")
    stop_reason = _stop_out(resp.finish_reason, saw_tool)
    if stop_reason == "end_turn" and isinstance(stop_sequence, str):
        stop_reason = "stop_sequence"
    else:
        stop_sequence = None
    out = _OutMessage(
        id=resp.id or new_id("msg_"),
        type="message",
        role="assistant",
        model=resp.model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=_usage_out(resp.usage),
    )
    return _ENC.encode(out)
