"""OpenAI Chat Completions streams: ``chat.completion.chunk`` SSE ↔ IR events, and the relay check.

Stream decoders emit ``UsageEvent`` *before* ``Finish``; OpenAI upstreams send the usage chunk after the finish
chunk, so the decoder holds the finish back until the usage chunk or ``[DONE]`` arrives.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

import msgspec

from ... import ir
from ...errors import kind_for_status
from ...sse import DONE, SSEEvent, frame
from ..base import Codec, RelayCheck, new_id, truncated_stream_error
from .errors import stream_error_chunk
from .response import _FINISH_IN, _finish_out, _usage_in, _usage_out
from .wire import _ENC, _RESP_DEC, DONE_FRAME, _InMessage, _OutChunk, _OutDelta, _OutFunction, _OutToolCall

__all__ = ["ChatRelayCheck", "ChatStreamDecoder", "ChatStreamEncoder"]


# --------------------------------------------------------------------------------------------- streaming


class _ToolState:
    __slots__ = ("args", "id", "index", "name")

    def __init__(self) -> None:
        self.index = -1
        self.id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []


class ChatStreamDecoder:
    """``chat.completion.chunk`` SSE events → IR events (choice 0 only).

    Tool calls are re-indexed 0, 1, ... in order of first appearance; a call whose first fragment lacks the
    name is held back until the name arrives, and a missing id is synthesised as ``call_<respId>_0_<toolIdx>``
    (stable per response, so a retried translation names calls the same way). Comments, ``event:`` names,
    non-JSON payloads and anything after ``[DONE]`` are ignored: compatible servers add all of them.
    """

    __slots__ = ("_done", "_finish", "_finished", "_id", "_started", "_tool_count", "_tools", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._finish: ir.FinishReason | None = None
        self._usage: ir.Usage | None = None
        self._tools: dict[int, _ToolState] = {}
        self._tool_count = 0
        self._id = ""

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = event.data.strip()
        if not data:
            return []
        if data == b"[DONE]":
            self._done = True
            return self._finalize(default=True)
        if data[0] != 0x7B:  # '{'
            return []
        try:
            chunk = _RESP_DEC.decode(data)
        except msgspec.DecodeError:
            return []
        out: list[ir.Event] = []
        if chunk.error is not None:
            self._done = True
            code = chunk.error.code
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            message = str(chunk.error.message or "upstream error")
            return [ir.Error(status=status, message=message, kind=kind_for_status(status))]
        if not self._started:
            self._started = True
            self._id = chunk.id or new_id("chatcmpl-")
            out.append(ir.Start(id=self._id, model=chunk.model or "", created=chunk.created or 0))
        if chunk.usage is not None:
            self._usage = _usage_in(chunk.usage)
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta or choice.message
            if delta is not None:
                self._delta(delta, out)
            if choice.finish_reason:
                self._finish = _FINISH_IN.get(choice.finish_reason, "stop")
        if self._finish is not None and chunk.usage is not None and not self._finished:
            out.extend(self._finalize(default=False))
        return out

    def _delta(self, d: _InMessage, out: list[ir.Event]) -> None:
        reasoning = d.reasoning_content or (d.reasoning if isinstance(d.reasoning, str) else None)
        if reasoning:
            out.append(ir.ReasoningDelta(text=reasoning))
        if isinstance(d.content, str):
            if d.content:
                out.append(ir.TextDelta(d.content))
        elif d.content:
            for p in d.content:
                if p.type == "text" and p.text:
                    out.append(ir.TextDelta(p.text))
        if not d.tool_calls:
            return
        for pos, tc in enumerate(d.tool_calls):
            key = tc.index if tc.index is not None else pos
            st = self._tools.get(key)
            if st is None:
                st = self._tools[key] = _ToolState()
            if tc.id and st.id is None:
                st.id = tc.id
            fn = tc.function
            if fn is not None and fn.name and st.name is None:
                st.name = fn.name
            args = _args_piece(fn.arguments) if fn is not None else ""
            if st.index < 0:
                if args:
                    st.args.append(args)
                if st.name is None:
                    continue
                st.index = self._tool_count
                self._tool_count += 1
                call_id = st.id or f"call_{self._id}_0_{key}"
                out.append(ir.ToolCallStart(index=st.index, id=call_id, name=st.name))
                if st.args:
                    out.append(ir.ToolArgsDelta(index=st.index, json="".join(st.args)))
                    st.args = []
            elif args:
                out.append(ir.ToolArgsDelta(index=st.index, json=args))

    def _finalize(self, *, default: bool) -> list[ir.Event]:
        if self._finished or not self._started:
            return []
        if self._finish is None:
            if not default:
                return []
            self._finish = "stop"
        self._finished = True
        out: list[ir.Event] = []
        if self._usage is not None:
            out.append(ir.UsageEvent(self._usage))
        reason = self._finish
        if reason == "stop" and self._tool_count:
            reason = "tool_calls"
        out.append(ir.Finish(reason))
        return out

    def close(self) -> list[ir.Event]:
        # Without [DONE] only a finish the upstream really sent is forwarded; inventing one is the pipeline's.
        self._done = True
        return self._finalize(default=False)


def _args_piece(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return _ENC.encode(arguments).decode()


class ChatStreamEncoder:
    """IR events → ``data: {chat.completion.chunk}`` frames in OpenAI's order: a role chunk, content deltas, a
    finish chunk (with usage), then ``data: [DONE]``.

    The chunk envelope (id, created, model) is identical for every chunk, so it is serialised once into a
    byte prefix and only the delta is encoded per event. Usage goes on the finish chunk, or — when the client
    asked for ``stream_options.include_usage`` — into the OpenAI-native trailing
    ``{"choices":[],"usage":...}`` chunk instead.
    """

    __slots__ = (
        "_created",
        "_done",
        "_head",
        "_id",
        "_include_usage",
        "_model",
        "_saw_tool",
        "_started",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._include_usage = bool(req.include_usage)
        self._started = False
        self._done = False
        self._saw_tool = False
        self._usage: ir.Usage | None = None
        self._id = ""
        self._created = 0
        self._head = b""

    def _start(self, ev: ir.Start | None) -> bytes:
        self._started = True
        self._id = (ev.id if ev is not None else "") or new_id("chatcmpl-")
        self._created = (ev.created if ev is not None else 0) or int(time.time())
        if not self._model and ev is not None:
            self._model = ev.model
        self._head = (
            b'data: {"id":'
            + _ENC.encode(self._id)
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + _ENC.encode(self._model)
            + b',"choices":[{"index":0,"delta":'
        )
        return self._delta(_OutDelta(role="assistant", content=""))

    def _delta(self, delta: _OutDelta, finish: str | None = None) -> bytes:
        tail = b',"finish_reason":null}]}\n\n' if finish is None else b',"finish_reason":"' + finish.encode() + b'"}]'
        return self._head + _ENC.encode(delta) + tail

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event)
        prefix = b"" if self._started else self._start(None)
        if isinstance(event, ir.TextDelta):
            return prefix + self._delta(_OutDelta(content=event.text)) if event.text else prefix
        if isinstance(event, ir.ReasoningDelta):
            return prefix + self._delta(_OutDelta(reasoning_content=event.text)) if event.text else prefix
        if isinstance(event, ir.ToolArgsDelta):
            if not event.json:
                return prefix
            call = _OutToolCall(index=event.index, function=_OutFunction(arguments=event.json))
            return prefix + self._delta(_OutDelta(tool_calls=[call]))
        if isinstance(event, ir.ToolCallStart):
            self._saw_tool = True
            call = _OutToolCall(
                index=event.index,
                id=event.id,
                type="function",
                function=_OutFunction(name=event.name, arguments=""),
            )
            return prefix + self._delta(_OutDelta(tool_calls=[call]))
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return prefix
        if isinstance(event, ir.Finish):
            return prefix + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            return prefix + frame(stream_error_chunk(event))
        return prefix  # BlockStop: chunk boundaries already separate blocks

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        finish = _finish_out(reason, self._saw_tool)
        usage = self._usage or ir.Usage()
        if self._include_usage:
            out = self._delta(_OutDelta(), finish) + b"}\n\n"
            trailer = _OutChunk(
                id=self._id,
                object="chat.completion.chunk",
                created=self._created,
                model=self._model,
                choices=[],
                usage=_usage_out(usage),
            )
            out += frame(_ENC.encode(trailer))
        elif self._usage is not None:
            out = self._delta(_OutDelta(), finish) + b',"usage":' + _ENC.encode(_usage_out(usage)) + b"}\n\n"
        else:
            out = self._delta(_OutDelta(), finish) + b"}\n\n"
        return out + DONE_FRAME

    def close(self) -> bytes:
        if self._done:
            return b""
        prefix = b"" if self._started else self._start(None)
        return prefix + self._finish("stop")


_FINISH_REASON: Final = re.compile(rb'"finish_reason"\s*:\s*"')


class ChatRelayCheck(RelayCheck):
    """A relayed chat stream ends with ``data: [DONE]``; nothing after it is forwarded (trailing cost chunks).

    Named events other than ``error`` are vendor additions strict clients reject. A stream that carried a
    finish reason but no ``[DONE]`` (some compatible servers omit it) gets the terminator added; one that
    stopped before any finish reason is closed with an in-band error.
    """

    __slots__ = ("_codec", "done", "finished")

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self.done = False
        self.finished = False

    def forward(self, ev: SSEEvent) -> bool:
        if self.done:
            return False
        if ev.data == DONE:
            self.done = self.finished = True
            return True
        if not self.finished and _FINISH_REASON.search(ev.data):
            self.finished = True
        return ev.event is None or ev.event == "error"

    def finish(self) -> bytes | None:
        if self.finished and not self.done:
            return frame(DONE)
        if self.finished:
            return None
        return self._codec.stream_error(truncated_stream_error())
