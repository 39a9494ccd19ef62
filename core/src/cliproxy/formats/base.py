"""The codec contract: one codec per dialect, registered via ``register_formats``.

A codec is the single home of everything the proxy knows about one dialect: mapping its requests, responses and
stream events to and from the IR, its error envelope and in-band stream error event, how a stream relayed
verbatim is checked for a proper ending, the shapes of its token-count endpoint, and where a request body names
its model. The pipeline and the HTTP layer reach all of it through the codec registry (``Mapping[str, Codec]``
keyed by :attr:`Codec.name`), so neither ever tests a dialect name.

Subclass :class:`Codec`: the six IR methods are abstract, everything else has a default that suits a JSON
dialect with a plain ``{"error": {...}}`` envelope and no recognisable stream terminator.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from .. import ir
from ..errors import ErrorKind, ProxyError, UpstreamError, kind_for_status, upstream_message
from ..logging import redact
from ..sse import SSEEvent

__all__ = [
    "TRUNCATED_STREAM",
    "Codec",
    "CodecError",
    "RelayCheck",
    "StreamDecoder",
    "StreamEncoder",
    "new_id",
    "stream_error_message",
    "truncated_stream_error",
]

#: Message of the error that closes a stream whose upstream stopped before the response was complete.
TRUNCATED_STREAM: Final = "upstream stream ended before the response was complete"

_encode: Final = msgspec.json.encode
_decode: Final = msgspec.json.decode


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


class RelayCheck:
    """Watches one stream relayed verbatim (client and upstream speak the same dialect).

    ``forward`` says whether an upstream event goes to the client (dialects drop vendor events strict clients
    choke on, and anything after the terminator); ``finish`` says how the stream ended. This default forwards
    everything and trusts the end, for dialects without a recognisable terminator.
    """

    __slots__ = ()

    def forward(self, ev: SSEEvent) -> bool:
        return True

    def finish(self) -> bytes | None:
        """``None`` when the stream ended properly, else the bytes that close it honestly for the client."""
        return None


class Codec(ABC):
    """One dialect: IR mapping plus the dialect knowledge the pipeline and HTTP layer ask for."""

    #: The dialect id (``openai``, ``openai-response``, ``claude``, ``gemini``, ``gemini-cli`` ...): the key
    #: in the codec registry and what executors name in ``wire_format``.
    name: str
    #: Whether upstreams of this dialect answer token counts (see :meth:`decode_count_tokens_response`); when
    #: not, the pipeline estimates locally.
    counts_tokens: bool = False
    #: Where answers name the model: the JSON key, its path in a whole response and in a stream event. The
    #: identity path uses it to answer with the name the client asked for instead of the upstream's.
    model_paths: tuple[str, tuple[str, ...], tuple[str, ...]] = ("model", ("model",), ("model",))
    #: Response headers a pass-through answer keeps (lower-case prefixes): rate-limit state and request ids
    #: that clients of this dialect read.
    passthrough_header_prefixes: tuple[str, ...] = ("x-ratelimit", "x-request-id", "request-id")

    # ------------------------------------------------------------------ IR mapping

    @abstractmethod
    def decode_request(self, body: bytes) -> ir.Request: ...

    @abstractmethod
    def encode_request(self, req: ir.Request) -> bytes: ...

    @abstractmethod
    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        """``req`` is the request as sent upstream: codecs that renamed tools map names back with it."""

    @abstractmethod
    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes: ...

    @abstractmethod
    def stream_decoder(self, req: ir.Request | None = None) -> StreamDecoder: ...

    @abstractmethod
    def stream_encoder(self, req: ir.Request) -> StreamEncoder: ...

    # ------------------------------------------------------------------ errors

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        """The dialect's JSON error envelope for an answer with ``status`` (secrets in ``message`` redacted)."""
        err = {"message": redact(message), "type": kind or kind_for_status(status), "code": code}
        return _encode({"error": err})

    def is_native_error(self, body: bytes) -> bool:
        """Whether an upstream error body already is in this dialect's shape, so clients get it verbatim."""
        return False

    def stream_error(self, exc: ProxyError) -> bytes:
        """The framed in-band error event for a stream whose status line was already sent."""
        body = self.error_body(exc.status, stream_error_message(exc), exc.kind, exc.code)
        return b"data: " + body + b"\n\n"

    def relay_check(self) -> RelayCheck:
        """A fresh checker for one verbatim-relayed stream of this dialect."""
        return RelayCheck()

    # ------------------------------------------------------------------ token counting

    def count_tokens_request(self, body: bytes, model: str) -> bytes:
        """A generate body of this dialect reshaped for its count-tokens endpoint (already-shaped bodies as is)."""
        return body

    def encode_count_tokens_response(self, total: int) -> bytes:
        """The count-tokens answer a client of this dialect expects."""
        return _encode({"input_tokens": total})

    def decode_count_tokens_response(self, body: bytes) -> int:
        """The token count in an upstream count-tokens answer; :class:`CodecError` for an unknown shape."""
        try:
            data: Any = _decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"invalid token count response: {exc}") from None
        value = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(value, int):
            raise CodecError("token count response has no integer 'input_tokens'")
        return value

    # ------------------------------------------------------------------ identity path

    def rewrite_model(self, body: bytes, model: str) -> bytes:
        """The client's body with only the upstream model name changed; unknown fields pass through untouched."""
        try:
            data = _decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CodecError("request body must be a JSON object")
        if data.get("model") == model:
            return body
        data["model"] = model
        return _encode(data)


def stream_error_message(exc: ProxyError) -> str:
    """The message an in-band error event carries: the upstream's own words when it sent an error body."""
    if isinstance(exc, UpstreamError) and exc.body:
        return upstream_message(exc.body, exc.message)
    return exc.message


def truncated_stream_error() -> UpstreamError:
    """The error that honestly closes a relayed stream which ended without its terminator."""
    return UpstreamError(502, TRUNCATED_STREAM, network=True)


def new_id(prefix: str) -> str:
    """An id for something the upstream did not name (``msg_``, ``call_``, ``chatcmpl-`` ...)."""
    return prefix + os.urandom(12).hex()
