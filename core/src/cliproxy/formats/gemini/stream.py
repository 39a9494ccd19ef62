"""Gemini streams (``streamGenerateContent?alt=sse``): SSE ↔ IR events, and the relay check."""

from __future__ import annotations

import re
import secrets
from typing import Final

import msgspec

from ... import ir
from ...errors import kind_for_status
from ...sse import SSEEvent, frame
from ..base import Codec, RelayCheck, truncated_stream_error
from .errors import error_envelope
from .mapping import (
    _TO_NATIVE,
    _args_object,
    _args_text,
    _finish_reason,
    _format_time,
    _mint_id,
    _parse_time,
    _random_id,
    _usage_from_ir,
    _usage_to_ir,
)
from .wire import (
    _DIALECT,
    ErrorBody,
    FunctionCall,
    GenerateContentResponse,
    OutCandidate,
    OutContent,
    OutResponse,
    Part,
    UsageMetadata,
    _cli_chunk_decoder,
    _encode,
    _response_decoder,
)

__all__ = ["GeminiRelayCheck", "GeminiStreamDecoder", "GeminiStreamEncoder"]


class GeminiStreamDecoder:
    """Each SSE ``data:`` is a complete GenerateContentResponse; function calls arrive whole.

    Usage and the finish reason are held back until the terminal chunk (Gemini repeats a growing
    ``usageMetadata`` on every chunk, so only the last one is the total), and a function call seen in any chunk
    makes the finish ``tool_calls`` (Gemini itself says ``STOP`` after function calls).
    """

    __slots__ = ("_done", "_finish", "_id", "_names", "_started", "_tools", "_unwrap", "_usage")

    def __init__(self, names: dict[str, str] | None = None, *, unwrap: bool = False) -> None:
        self._names = names or {}
        self._unwrap = unwrap
        self._started = False
        self._done = False
        self._id: str | None = None
        self._tools = 0
        self._finish: str | None = None
        self._usage: UsageMetadata | None = None

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        if data[0] in b"[,":  # alt=json array framing: "[{...}", ",{...}", "]"
            data = data.lstrip(b"[,").rstrip(b"],").strip()
            if not data:
                return []
        try:
            if self._unwrap:
                env = _cli_chunk_decoder.decode(data)
                if env.error is not None:
                    return self._error(env.error)
                if env.response is None:
                    return []
                chunk = env.response
            else:
                chunk = _response_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []  # keep-alives and non-JSON noise between chunks
        if chunk.error is not None:
            return self._error(chunk.error)
        return self._chunk(chunk)

    def _error(self, err: ErrorBody) -> list[ir.Event]:
        self._done = True
        status = err.code or 500
        return [ir.Error(status=status, message=err.message or "upstream error", kind=kind_for_status(status))]

    def _chunk(self, chunk: GenerateContentResponse) -> list[ir.Event]:
        out: list[ir.Event] = []
        if not self._started:
            self._started = True
            self._id = chunk.response_id
            out.append(
                ir.Start(
                    id=chunk.response_id or secrets.token_hex(12),
                    model=chunk.model_version or "",
                    created=_parse_time(chunk.create_time),
                )
            )
        if self._done:
            return out
        cand = chunk.candidates[0] if chunk.candidates else None
        if cand is not None and cand.content is not None:
            for part in cand.content.parts:
                self._part(part, out)
        if chunk.usage_metadata is not None:
            self._usage = chunk.usage_metadata
        if cand is not None and cand.finish_reason:
            self._finish = cand.finish_reason
        elif chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
            self._finish = "SAFETY"
        u = chunk.usage_metadata
        if self._finish and u is not None and (u.candidates_token_count is not None or u.total_token_count):
            out.extend(self._terminal())
        return out

    def _part(self, part: Part, out: list[ir.Event]) -> None:
        sig = part.thought_signature
        fc = part.function_call
        if fc is not None:
            k = self._tools
            self._tools += 1
            call_id = fc.id or (_mint_id(self._id, k, fc.name) if self._id else _random_id())
            out.append(ir.ToolCallStart(index=k, id=call_id, name=self._names.get(fc.name, fc.name), signature=sig))
            out.append(ir.ToolArgsDelta(index=k, json=_args_text(fc.args)))
            out.append(ir.BlockStop())
        elif part.text:
            if part.thought:
                out.append(ir.ReasoningDelta(text=part.text, signature=sig, origin=_DIALECT if sig else None))
            else:
                out.append(ir.TextDelta(text=part.text))
        elif sig:
            # Signature-only parts carry no content (other dialects would show an empty block); the
            # signature still reaches Gemini-family clients.
            out.append(ir.ReasoningDelta(text="", signature=sig, origin=_DIALECT))

    def _terminal(self) -> list[ir.Event]:
        self._done = True
        out: list[ir.Event] = []
        if self._usage is not None:
            out.append(ir.UsageEvent(usage=_usage_to_ir(self._usage)))
        out.append(ir.Finish(reason=_finish_reason(self._finish, self._tools > 0)))
        return out

    def close(self) -> list[ir.Event]:
        if self._done or self._finish is None:
            return []
        return self._terminal()


class GeminiStreamEncoder:
    """IR events → ``data: {GenerateContentResponse}`` frames, ``{"response": ...}`` for the CLI.

    Text and thoughts are flushed immediately; a function call is held until its arguments are complete
    because Gemini clients expect whole ``functionCall.args`` objects. The last chunk carries ``finishReason``
    and usage.
    """

    __slots__ = ("_created", "_done", "_id", "_model", "_pending", "_usage", "_wrap")

    def __init__(self, req: ir.Request, *, wrap: bool = False) -> None:
        self._wrap = wrap
        self._model = req.model
        self._id: str | None = None
        self._created = 0
        #: Tool call being assembled: [name, signature, argument fragments].
        self._pending: tuple[str, str | None, list[str]] | None = None
        self._usage: ir.Usage | None = None
        self._done = False

    def _frame(self, parts: list[Part], finish: str | None = None, usage: ir.Usage | None = None) -> bytes:
        chunk = OutResponse(
            candidates=[OutCandidate(content=OutContent(role="model", parts=parts), index=0, finish_reason=finish)],
            usage_metadata=_usage_from_ir(usage) if usage is not None else None,
            model_version=self._model or None,
            response_id=self._id,
            create_time=_format_time(self._created),
        )
        body = _encode(chunk)
        if self._wrap:
            body = b'{"response":' + body + b"}"
        return frame(body)

    def _take_pending(self) -> list[Part]:
        pending = self._pending
        if pending is None:
            return []
        self._pending = None
        name, sig, frags = pending
        return [
            Part(
                function_call=FunctionCall(name=name, args=_args_object("".join(frags))),
                thought_signature=sig,
            )
        ]

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.TextDelta):
            parts = self._take_pending()
            if event.text:
                parts.append(Part(text=event.text))
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ReasoningDelta):
            parts = self._take_pending()
            sig = event.signature if event.origin == _DIALECT else None
            if event.text or sig:
                parts.append(Part(text=event.text, thought=True if event.text else None, thought_signature=sig))
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ToolCallStart):
            parts = self._take_pending()
            self._pending = (event.name, event.signature, [])
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ToolArgsDelta):
            if self._pending is not None:
                self._pending[2].append(event.json)
            return b""
        if isinstance(event, ir.BlockStop):
            parts = self._take_pending()
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.Start):
            self._id = event.id or None
            self._model = self._model or event.model
            self._created = event.created
            return b""
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, ir.Finish):
            self._done = True
            return self._frame(self._take_pending(), _TO_NATIVE.get(event.reason, "STOP"), self._usage)
        if isinstance(event, ir.Error):
            self._done = True
            return self._take_pending_frame() + frame(error_envelope(event.status, event.message))
        return b""

    def _take_pending_frame(self) -> bytes:
        parts = self._take_pending()
        return self._frame(parts) if parts else b""

    def close(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        return self._take_pending_frame()


# --------------------------------------------------------------------------------------------- codec


_FINISH_REASON: Final = re.compile(rb'"finishReason"\s*:\s*"')


class GeminiRelayCheck(RelayCheck):
    """Gemini streams have no terminator event: a relayed stream ended properly once a chunk carried a
    ``finishReason`` or the stream reported an error; otherwise it is closed with an in-band error chunk.
    Every chunk is forwarded (works for the Gemini CLI envelope too)."""

    __slots__ = ("_codec", "finished")

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self.finished = False

    def forward(self, ev: SSEEvent) -> bool:
        if not self.finished and (_FINISH_REASON.search(ev.data) or ev.data.startswith(b'{"error"')):
            self.finished = True
        return True

    def finish(self) -> bytes | None:
        return None if self.finished else self._codec.stream_error(truncated_stream_error())
