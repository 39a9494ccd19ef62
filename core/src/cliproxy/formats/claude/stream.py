"""Anthropic Messages streams: SSE ↔ IR events, and the relay check."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from ... import ir
from ...sse import SSEEvent, frame
from ..base import Codec, RelayCheck, new_id, truncated_stream_error
from .errors import error_status, error_type
from .mapping import _STOP_IN, _reasoning_sig, _stop_out, _usage_in, _usage_out
from .wire import (
    _EMPTY_OBJECT,
    _ENC,
    _EVENT_DEC,
    NAME,
    _Block,
    _DeltaBody,
    _ErrBody,
    _EvBlockStart,
    _EvError,
    _EvMessageDelta,
    _EvMessageStart,
    _InError,
    _InEvent,
    _InMessage,
    _OutMessage,
    _OutUsage,
)

__all__ = ["ClaudeRelayCheck", "ClaudeStreamDecoder", "ClaudeStreamEncoder"]


# --------------------------------------------------------------------------------------------- streaming


class ClaudeStreamDecoder:
    """Messages SSE events → IR events.

    Tool-use blocks are re-indexed 0, 1, ... among tool calls (the Claude block index also counts text and
    thinking blocks; OpenAI clients reject the gaps). ``UsageEvent`` + ``Finish`` are emitted at
    ``message_delta`` with the ``message_start`` input tokens merged in (Claude reports input tokens at the
    start and output tokens at the end); server-tool blocks are
    skipped because no other dialect can replay them.
    """

    __slots__ = ("_base", "_blocks", "_done", "_finished", "_started", "_thinking_chars", "_tools")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._base: ir.Usage | None = None
        #: Claude block index → IR tool index (or -1 for blocks whose deltas are ignored).
        self._blocks: dict[int, int] = {}
        self._tools = 0
        self._thinking_chars = 0

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = event.data.strip()
        if not data or data[0] != 0x7B:  # '{': ignore [DONE], keep-alives and other non-JSON
            return []
        try:
            ev = _EVENT_DEC.decode(data)
        except msgspec.DecodeError:
            return []
        t = ev.type
        if t == "content_block_delta":
            return self._delta(ev)
        if t == "content_block_start":
            return self._block_start(ev)
        if t == "content_block_stop":
            return [] if self._blocks.get(ev.index if ev.index is not None else -1) == -1 else [ir.BlockStop()]
        if t == "message_start":
            msg = ev.message or _InMessage()
            self._started = True
            self._base = _usage_in(msg.usage) if msg.usage is not None else None
            return [ir.Start(id=msg.id or new_id("msg_"), model=msg.model)]
        if t == "message_delta":
            return self._message_delta(ev)
        if t == "message_stop":
            self._done = True
            return self._finish("stop") if not self._finished else []
        if t == "error":
            self._done = True
            err = ev.error or _InError()
            status, kind = error_status(err.type) or (500, "server")
            return [ir.Error(status=status, message=err.message or err.type, kind=kind)]
        return []  # ping and future event types

    def _block_start(self, ev: _InEvent) -> list[ir.Event]:
        b = ev.content_block
        idx = ev.index if ev.index is not None else -1
        if b is None:
            return []
        if b.type == "tool_use":
            self._blocks[idx] = self._tools
            self._tools += 1
            out: list[ir.Event] = [
                ir.ToolCallStart(index=self._tools - 1, id=b.id or new_id("toolu_"), name=b.name or "")
            ]
            if b.input is not UNSET:
                raw = bytes(b.input)
                if raw.strip() not in (b"{}", b""):
                    out.append(ir.ToolArgsDelta(index=self._tools - 1, json=raw.decode()))
            return out
        if b.type == "text":
            return [ir.TextDelta(b.text)] if b.text else []
        if b.type == "thinking":
            text = b.thinking if b.thinking is not UNSET else ""
            self._thinking_chars += len(text)
            return [ir.ReasoningDelta(text=text, origin=NAME)] if text else []
        if b.type == "redacted_thinking" and b.data is not UNSET:
            return [ir.ReasoningDelta(encrypted=b.data, origin=NAME)]
        self._blocks[idx] = -1
        return []

    def _delta(self, ev: _InEvent) -> list[ir.Event]:
        d = ev.delta
        if d is None:
            return []
        kind = d.type
        if kind == "text_delta":
            return [ir.TextDelta(d.text)] if d.text else []
        if kind == "input_json_delta":
            tool = self._blocks.get(ev.index if ev.index is not None else -1, -1)
            if tool < 0 or not d.partial_json:
                return []
            return [ir.ToolArgsDelta(index=tool, json=d.partial_json)]
        if kind == "thinking_delta":
            if not d.thinking:
                return []
            self._thinking_chars += len(d.thinking)
            return [ir.ReasoningDelta(text=d.thinking, origin=NAME)]
        if kind == "signature_delta":
            return [ir.ReasoningDelta(signature=d.signature, origin=NAME)] if d.signature else []
        return []  # citations_delta ...

    def _message_delta(self, ev: _InEvent) -> list[ir.Event]:
        if self._finished:
            return []
        reason = ev.delta.stop_reason if ev.delta is not None else None
        usage = _usage_in(ev.usage, self._base)
        usage.reasoning_tokens = min(self._thinking_chars // 4, usage.output_tokens)
        self._base = usage
        return self._finish(_STOP_IN.get(reason or "end_turn", "stop"))

    def _finish(self, reason: ir.FinishReason) -> list[ir.Event]:
        self._finished = True
        out: list[ir.Event] = []
        if self._base is not None:
            out.append(ir.UsageEvent(self._base))
        if reason == "stop" and self._tools:
            reason = "tool_calls"
        out.append(ir.Finish(reason))
        return out

    def close(self) -> list[ir.Event]:
        self._done = True
        return []


class ClaudeStreamEncoder:
    """IR events → Messages SSE in Anthropic's exact order: ``message_start``, then per block
    ``content_block_start`` → deltas → ``content_block_stop``, then ``message_delta`` and ``message_stop``.

    Block indexes are allocated here, contiguously from 0, and at most one block is open: a change of block
    kind (or a new tool call) closes the open block first, whether or not the decoder sent ``BlockStop``.
    Text, thinking and argument deltas — the hot path — are framed from byte templates.
    """

    __slots__ = (
        "_done",
        "_id",
        "_model",
        "_next",
        "_open",
        "_open_tool",
        "_saw_tool",
        "_started",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._id = ""
        self._started = False
        self._done = False
        self._saw_tool = False
        self._usage: ir.Usage | None = None
        self._next = 0  # next block index
        self._open: str | None = None  # "text" | "thinking" | "tool"
        self._open_tool = -1  # IR index of the open tool call

    # -- framing helpers

    def _start(self, ev: ir.Start | None) -> bytes:
        self._started = True
        self._id = (ev.id if ev is not None else "") or new_id("msg_")
        if not self._model and ev is not None:
            self._model = ev.model
        msg = _OutMessage(
            id=self._id,
            type="message",
            role="assistant",
            model=self._model,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage=_OutUsage(input_tokens=0, output_tokens=0),
        )
        return frame(_ENC.encode(_EvMessageStart(type="message_start", message=msg)), "message_start")

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        self._open_tool = -1
        return (
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
            + str(self._next - 1).encode()
            + b"}\n\n"
        )

    def _open_block(self, kind: str, block: _Block) -> bytes:
        out = self._close()
        self._open = kind
        index = self._next
        self._next += 1
        ev = _EvBlockStart(type="content_block_start", index=index, content_block=block)
        return out + frame(_ENC.encode(ev), "content_block_start")

    def _delta(self, kind: bytes, field: bytes, value: str) -> bytes:
        return (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(self._next - 1).encode()
            + b',"delta":{"type":"'
            + kind
            + b'","'
            + field
            + b'":'
            + _ENC.encode(value)
            + b"}}\n\n"
        )

    # -- events

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event)
        out = b"" if self._started else self._start(None)
        if isinstance(event, ir.TextDelta):
            if not event.text:
                return out
            if self._open != "text":
                out += self._open_block("text", _Block(type="text", text=""))
            return out + self._delta(b"text_delta", b"text", event.text)
        if isinstance(event, ir.ReasoningDelta):
            return out + self._reasoning(event)
        if isinstance(event, ir.ToolArgsDelta):
            if event.json and self._open == "tool" and event.index == self._open_tool:
                out += self._delta(b"input_json_delta", b"partial_json", event.json)
            return out
        if isinstance(event, ir.ToolCallStart):
            self._saw_tool = True
            block = _Block(type="tool_use", id=event.id, name=event.name, input=_EMPTY_OBJECT)
            out += self._open_block("tool", block)
            self._open_tool = event.index
            return out
        if isinstance(event, ir.BlockStop):
            return out + self._close()
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return out
        if isinstance(event, ir.Finish):
            return out + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            err = _ErrBody(type=error_type(event.kind), message=event.message)
            return out + frame(_ENC.encode(_EvError(type="error", error=err)), "error")
        return out

    def _reasoning(self, ev: ir.ReasoningDelta) -> bytes:
        out = b""
        if ev.encrypted:
            if ev.origin not in (None, NAME):
                return b""
            out = self._open_block("redacted", _Block(type="redacted_thinking", data=ev.encrypted))
            return out + self._close()
        if ev.text:
            if self._open != "thinking":
                out = self._open_block("thinking", _Block(type="thinking", thinking="", signature=""))
            out += self._delta(b"thinking_delta", b"thinking", ev.text)
        sig = _reasoning_sig(ev)
        if sig and self._open == "thinking":
            out += self._delta(b"signature_delta", b"signature", sig)
        return out

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        delta = _DeltaBody(stop_reason=_stop_out(reason, self._saw_tool), stop_sequence=None)
        ev = _EvMessageDelta(type="message_delta", delta=delta, usage=_usage_out(self._usage))
        return (
            self._close()
            + frame(_ENC.encode(ev), "message_delta")
            + b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )

    def close(self) -> bytes:
        if self._done:
            return b""
        out = b"" if self._started else self._start(None)
        return out + self._finish("stop")


class ClaudeRelayCheck(RelayCheck):
    """A relayed Messages stream ends with ``message_stop`` (or an ``error`` event); nothing after it is
    forwarded, and a stream that stopped before either is closed with an in-band ``error`` event."""

    __slots__ = ("_codec", "done")

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self.done = False

    def forward(self, ev: SSEEvent) -> bool:
        if self.done:
            return False
        if ev.event in ("message_stop", "error"):
            self.done = True
        return True

    def finish(self) -> bytes | None:
        return None if self.done else self._codec.stream_error(truncated_stream_error())
