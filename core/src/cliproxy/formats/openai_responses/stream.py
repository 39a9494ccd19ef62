"""OpenAI Responses streams: SSE ↔ IR events, and the relay check.

Responses clients such as Codex CLI are strict about the stream: every item needs its full
added → delta → done lifecycle, ``sequence_number`` must increase, and a stream that does not end with exactly
one ``response.completed`` (or ``response.incomplete``/``response.failed``) is reported as "stream disconnected
before completion". The encoder therefore closes open items itself and finalises on ``close()``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

import msgspec

from ... import ir
from ...errors import kind_for_status
from ...sse import SSEEvent, frame
from ..base import Codec, RelayCheck, truncated_stream_error
from .errors import error_code, status_for_code
from .response import _echo, _finish, _item_base, _response_id, _response_object, _status_for, _usage_to_ir
from .wire import (
    _DIALECT,
    FunctionCallItem,
    MessageItem,
    OutputItem,
    OutputText,
    ReasoningItem,
    ResponseError,
    SummaryText,
    _ArgsDeltaEvent,
    _ArgsDoneEvent,
    _ContentPartEvent,
    _encode,
    _event_decoder,
    _InEvent,
    _ItemEvent,
    _LifecycleEvent,
    _OutItem,
    _SummaryDeltaEvent,
    _SummaryDoneEvent,
    _SummaryPartEvent,
    _TextDeltaEvent,
    _TextDoneEvent,
)

__all__ = ["ResponsesRelayCheck", "ResponsesStreamDecoder", "ResponsesStreamEncoder"]


# --------------------------------------------------------------------------------------------- streaming


class ResponsesStreamDecoder:
    """Responses SSE → IR events; vendor events (``codex.rate_limits`` …) carry nothing translatable and are ignored."""

    __slots__ = ("_args_seen", "_names", "_started", "_tool_by_output", "_tools")

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self._names = names or {}
        self._started = False
        self._tools = 0
        #: output_index (or item id) → IR tool index.
        self._tool_by_output: dict[object, int] = {}
        self._args_seen: set[int] = set()

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        try:
            ev = _event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        kind = ev.type or event.event or ""
        out: list[ir.Event] = []
        if not self._started and kind.startswith("response."):
            self._started = True
            r = ev.response
            out.append(
                ir.Start(
                    id=r.id if r and r.id else secrets.token_hex(12),
                    model=r.model if r else "",
                    created=int(r.created_at) if r else int(time.time()),
                )
            )
        if kind == "response.output_text.delta":
            if ev.delta:
                out.append(ir.TextDelta(text=ev.delta))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if ev.delta:
                out.append(ir.ReasoningDelta(text=ev.delta))
        elif kind == "response.reasoning_summary_part.added":
            if ev.summary_index > 0:
                out.append(ir.ReasoningDelta(text="\n\n"))
        elif kind == "response.output_item.added":
            item = ev.item
            if item is not None and item.type == "function_call":
                self._start_tool(ev, item, out)
        elif kind == "response.function_call_arguments.delta":
            k = self._tool_index(ev)
            if k is not None and ev.delta:
                self._args_seen.add(k)
                out.append(ir.ToolArgsDelta(index=k, json=ev.delta))
        elif kind == "response.output_item.done":
            self._item_done(ev, out)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self._terminal(ev, out)
        elif kind == "error":
            status = status_for_code(ev.code)
            out.append(ir.Error(status=status, message=ev.message or "upstream error", kind=kind_for_status(status)))
        return out

    def _tool_index(self, ev: _InEvent) -> int | None:
        if ev.output_index is not None and ev.output_index in self._tool_by_output:
            return self._tool_by_output[ev.output_index]
        if ev.item_id is not None:
            return self._tool_by_output.get(ev.item_id)
        return None

    def _start_tool(self, ev: _InEvent, item: _OutItem, out: list[ir.Event]) -> int:
        k = self._tools
        self._tools += 1
        if ev.output_index is not None:
            self._tool_by_output[ev.output_index] = k
        if item.id:
            self._tool_by_output[item.id] = k
        name = item.name or ""
        out.append(ir.ToolCallStart(index=k, id=item.call_id or item.id or "", name=self._names.get(name, name)))
        if item.arguments:
            self._args_seen.add(k)
            out.append(ir.ToolArgsDelta(index=k, json=item.arguments))
        return k

    def _item_done(self, ev: _InEvent, out: list[ir.Event]) -> None:
        item = ev.item
        if item is None:
            return
        if item.type == "function_call":
            k = self._tool_index(ev)
            if k is None and item.id is not None:
                k = self._tool_by_output.get(item.id)
            if k is None:  # upstream skipped output_item.added
                k = self._start_tool(ev, item, out)
            elif k not in self._args_seen and item.arguments:
                out.append(ir.ToolArgsDelta(index=k, json=item.arguments))
            self._args_seen.add(k)
            out.append(ir.BlockStop())
        elif item.type == "reasoning":
            if item.encrypted_content:
                out.append(ir.ReasoningDelta(text="", encrypted=item.encrypted_content, origin=_DIALECT))
            out.append(ir.BlockStop())
        elif item.type == "message":
            out.append(ir.BlockStop())

    def _terminal(self, ev: _InEvent, out: list[ir.Event]) -> None:
        r = ev.response
        if r is None:
            out.append(ir.Finish(reason="tool_calls" if self._tools else "stop"))
            return
        if r.status == "failed" or ev.type == "response.failed":
            msg = r.error.message if r.error is not None else "the upstream response failed"
            code = r.error.code if r.error is not None else None
            http = status_for_code(code)
            out.append(ir.Error(status=http, message=msg, kind=kind_for_status(http)))
            return
        if r.usage is not None:
            out.append(ir.UsageEvent(usage=_usage_to_ir(r.usage)))
        status = "incomplete" if ev.type == "response.incomplete" else r.status
        out.append(ir.Finish(reason=_finish(status, r.incomplete_details, self._tools > 0)))

    def close(self) -> list[ir.Event]:
        return []


class ResponsesStreamEncoder:
    """IR events → the Responses event stream (``response.created``, ``response.in_progress``, then per item
    ``output_item.added`` → deltas → ``output_item.done``, then one terminal event), one item open at a time.

    Items are closed when the block kind changes, on ``BlockStop`` and before the terminal event; the final
    ``response.completed`` (``.incomplete`` for truncation, ``.failed`` for errors) carries every item and
    usage.
    """

    __slots__ = (
        "_created",
        "_done",
        "_echo",
        "_encrypted",
        "_id",
        "_item_id",
        "_model",
        "_open",
        "_out_index",
        "_output",
        "_seq",
        "_started",
        "_summary",
        "_tool",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._echo = _echo(req)
        self._model = req.model
        self._id = ""
        self._created = 0
        self._seq = 0
        self._started = False
        self._done = False
        self._output: list[OutputItem] = []
        #: Kind of the open item: "", "reasoning", "message" or "tool".
        self._open = ""
        self._item_id = ""
        self._out_index = 0
        #: Text of the open reasoning/message item.
        self._summary: list[str] = []
        self._encrypted: str | None = None
        #: Open tool call: (call_id, name, argument fragments).
        self._tool: tuple[str, str, list[str]] | None = None
        self._usage: ir.Usage | None = None

    def _emit(self, kind: str, payload: msgspec.Struct) -> bytes:
        return frame(_encode(payload), kind)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _lifecycle(self, kind: str, status: str, **kw: Any) -> bytes:
        obj = _response_object(
            resp_id=self._id, model=self._model, created=self._created, status=status, echo=self._echo, **kw
        )
        return self._emit(kind, _LifecycleEvent(type=kind, sequence_number=self._next(), response=obj))

    def _start(self, resp_id: str, model: str, created: int) -> bytes:
        self._started = True
        self._id = _response_id(resp_id)
        self._model = self._model or model
        self._created = created or int(time.time())
        return self._lifecycle("response.created", "in_progress") + self._lifecycle(
            "response.in_progress", "in_progress"
        )

    def _ensure_started(self) -> bytes:
        return b"" if self._started else self._start("", "", 0)

    def _open_item(self, kind: str, item: OutputItem, item_id: str) -> bytes:
        self._open = kind
        self._item_id = item_id
        self._out_index = len(self._output)
        return self._emit(
            "response.output_item.added",
            _ItemEvent(
                type="response.output_item.added",
                sequence_number=self._next(),
                output_index=self._out_index,
                item=item,
            ),
        )

    def _close(self) -> bytes:
        kind = self._open
        if not kind:
            return b""
        self._open = ""
        idx, item_id = self._out_index, self._item_id
        if kind == "reasoning":
            text = "".join(self._summary)
            encrypted, self._encrypted = self._encrypted, None
            item = ReasoningItem(
                id=item_id, summary=[SummaryText(text=text)] if text else [], encrypted_content=encrypted
            )
            out = self._emit(
                "response.reasoning_summary_text.done",
                _SummaryDoneEvent(
                    type="response.reasoning_summary_text.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    summary_index=0,
                    text=text,
                ),
            ) + self._emit(
                "response.reasoning_summary_part.done",
                _SummaryPartEvent(
                    type="response.reasoning_summary_part.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    summary_index=0,
                    part=SummaryText(text=text),
                ),
            )
            done_item: OutputItem = item
        elif kind == "message":
            text = "".join(self._summary)
            part = OutputText(annotations=[], logprobs=[], text=text)
            out = self._emit(
                "response.output_text.done",
                _TextDoneEvent(
                    type="response.output_text.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
            ) + self._emit(
                "response.content_part.done",
                _ContentPartEvent(
                    type="response.content_part.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    content_index=0,
                    part=part,
                ),
            )
            done_item = MessageItem(id=item_id, status="completed", role="assistant", content=[part])
        else:
            assert self._tool is not None
            call_id, name, frags = self._tool
            self._tool = None
            args = "".join(frags) or "{}"
            out = self._emit(
                "response.function_call_arguments.done",
                _ArgsDoneEvent(
                    type="response.function_call_arguments.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    name=name,
                    arguments=args,
                ),
            )
            done_item = FunctionCallItem(id=item_id, status="completed", arguments=args, call_id=call_id, name=name)
        self._summary = []
        self._output.append(done_item)
        return out + self._emit(
            "response.output_item.done",
            _ItemEvent(
                type="response.output_item.done",
                sequence_number=self._next(),
                output_index=idx,
                item=done_item,
            ),
        )

    def _reasoning(self, ev: ir.ReasoningDelta) -> bytes:
        out = b""
        if self._open != "reasoning":
            if not ev.text and not (ev.encrypted and ev.origin == _DIALECT):
                return b""  # a foreign signature alone has nothing to show a Responses client
            out = self._close()
            item_id = f"rs_{_item_base(self._id)}_{len(self._output)}"
            out += self._open_item("reasoning", ReasoningItem(id=item_id, summary=[], status="in_progress"), item_id)
            out += self._emit(
                "response.reasoning_summary_part.added",
                _SummaryPartEvent(
                    type="response.reasoning_summary_part.added",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=self._out_index,
                    summary_index=0,
                    part=SummaryText(text=""),
                ),
            )
        if ev.encrypted and ev.origin == _DIALECT:
            self._encrypted = ev.encrypted
        if ev.text:
            self._summary.append(ev.text)
            out += self._emit(
                "response.reasoning_summary_text.delta",
                _SummaryDeltaEvent(
                    type="response.reasoning_summary_text.delta",
                    sequence_number=self._next(),
                    item_id=self._item_id,
                    output_index=self._out_index,
                    summary_index=0,
                    delta=ev.text,
                ),
            )
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != "message":
            if not text:
                return b""
            out = self._close()
            item_id = f"msg_{_item_base(self._id)}_{len(self._output)}"
            out += self._open_item(
                "message",
                MessageItem(id=item_id, status="in_progress", role="assistant", content=[]),
                item_id,
            )
            out += self._emit(
                "response.content_part.added",
                _ContentPartEvent(
                    type="response.content_part.added",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=self._out_index,
                    content_index=0,
                    part=OutputText(annotations=[], logprobs=[], text=""),
                ),
            )
        if text:
            self._summary.append(text)
            out += self._emit(
                "response.output_text.delta",
                _TextDeltaEvent(
                    type="response.output_text.delta",
                    sequence_number=self._next(),
                    item_id=self._item_id,
                    output_index=self._out_index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                ),
            )
        return out

    def _tool_start(self, ev: ir.ToolCallStart) -> bytes:
        out = self._close()
        item_id = "fc_" + ev.id
        self._tool = (ev.id, ev.name, [])
        return out + self._open_item(
            "tool",
            FunctionCallItem(id=item_id, status="in_progress", arguments="", call_id=ev.id, name=ev.name),
            item_id,
        )

    def _tool_args(self, ev: ir.ToolArgsDelta) -> bytes:
        if self._open != "tool" or self._tool is None or not ev.json:
            return b""
        self._tool[2].append(ev.json)
        return self._emit(
            "response.function_call_arguments.delta",
            _ArgsDeltaEvent(
                type="response.function_call_arguments.delta",
                sequence_number=self._next(),
                item_id=self._item_id,
                output_index=self._out_index,
                delta=ev.json,
            ),
        )

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        out = self._close()
        if reason == "stop" and any(isinstance(i, FunctionCallItem) for i in self._output):
            reason = "tool_calls"
        status, incomplete = _status_for(reason)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        return out + self._lifecycle(kind, status, output=self._output, usage=self._usage, incomplete=incomplete)

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.TextDelta):
            return self._ensure_started() + self._text(event.text)
        if isinstance(event, ir.ReasoningDelta):
            return self._ensure_started() + self._reasoning(event)
        if isinstance(event, ir.ToolArgsDelta):
            return self._tool_args(event)
        if isinstance(event, ir.ToolCallStart):
            return self._ensure_started() + self._tool_start(event)
        if isinstance(event, ir.BlockStop):
            return self._close()
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event.id, event.model, event.created)
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, ir.Finish):
            return self._ensure_started() + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            err = ResponseError(code=error_code(event.status), message=event.message)
            return (
                self._ensure_started()
                + self._close()
                + self._lifecycle("response.failed", "failed", output=self._output, usage=self._usage, error=err)
            )
        return b""

    def close(self) -> bytes:
        """A stream must end with exactly one terminal event (Codex CLI reports "stream disconnected" otherwise):
        finalise if nothing did."""
        if self._done:
            return b""
        return self._ensure_started() + self._finish("stop")


#: Events that end a Responses stream.
_TERMINAL: Final = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


class ResponsesRelayCheck(RelayCheck):
    """A relayed Responses stream ends with one terminal event (``response.completed``/``.failed``/
    ``.incomplete`` or ``error``); nothing after it is forwarded. Only ``response.*`` and ``error`` events go
    to the client: vendor events (``codex.rate_limits`` ...) break strict Responses clients."""

    __slots__ = ("_codec", "done")

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self.done = False

    def forward(self, ev: SSEEvent) -> bool:
        if self.done:
            return False
        name = ev.event or ""
        if name in _TERMINAL:
            self.done = True
        return not name or name.startswith("response.") or name == "error"

    def finish(self) -> bytes | None:
        return None if self.done else self._codec.stream_error(truncated_stream_error())
