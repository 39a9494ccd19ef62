"""The codec contract every wire format implements (one codec per dialect, registered via ``register_formats``)."""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from .. import ir
from ..sse import SSEEvent

__all__ = ["Codec", "CodecError", "StreamDecoder", "StreamEncoder", "new_id"]


class CodecError(ValueError):
    """The body is not valid for this dialect; the message names the offending field (answered as HTTP 400)."""


@runtime_checkable
class StreamDecoder(Protocol):
    """Turns upstream SSE events into IR events; one instance per stream (holds per-stream state)."""

    def feed(self, event: SSEEvent) -> list[ir.Event]: ...

    def close(self) -> list[ir.Event]:
        """End of the upstream body: emit whatever is pending (a missing ``Finish`` is the pipeline's job)."""
        ...


@runtime_checkable
class StreamEncoder(Protocol):
    """Turns IR events into framed SSE bytes for the client; one instance per stream."""

    def encode(self, event: ir.Event) -> bytes: ...

    def close(self) -> bytes:
        """Called once after the last event; returns the terminator if ``Finish``/``Error`` did not emit it."""
        ...


@runtime_checkable
class Codec(Protocol):
    #: Dialect id: ``openai``, ``openai-response``, ``claude``, ``gemini``, ``gemini-cli``.
    name: str

    def decode_request(self, body: bytes) -> ir.Request: ...

    def encode_request(self, req: ir.Request) -> bytes: ...

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        """``req`` is the request as sent upstream: codecs that renamed tools map names back with it."""
        ...

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes: ...

    def stream_decoder(self, req: ir.Request | None = None) -> StreamDecoder: ...

    def stream_encoder(self, req: ir.Request) -> StreamEncoder: ...


def new_id(prefix: str) -> str:
    """An id for something the upstream did not name (``msg_``, ``call_``, ``chatcmpl-`` ...)."""
    return prefix + os.urandom(12).hex()
