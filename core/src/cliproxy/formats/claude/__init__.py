"""Anthropic Messages (dialect ``claude``): ``/v1/messages`` clients and Claude upstreams.

``wire`` holds the msgspec Structs, ``request``/``response``/``stream`` map them to and from the IR (with the
stop-reason and usage mappings they share in ``mapping``), and ``errors`` Anthropic's error envelope and types;
:class:`ClaudeCodec` ties them together for the codec registry.
"""

from __future__ import annotations

from typing import Final

import msgspec

from ... import ir
from ...errors import ErrorKind, ProxyError
from ..base import Codec, stream_error_message
from .errors import error_body, error_status, is_claude_error
from .request import decode_request, encode_request
from .response import decode_response, encode_response
from .stream import ClaudeRelayCheck, ClaudeStreamDecoder, ClaudeStreamEncoder
from .wire import _ENC, NAME

__all__ = [
    "CODEC",
    "COUNT_TOKENS_DROPS",
    "NAME",
    "ClaudeCodec",
    "ClaudeRelayCheck",
    "ClaudeStreamDecoder",
    "ClaudeStreamEncoder",
    "error_status",
]

#: Create-only fields ``/v1/messages/count_tokens`` rejects (a translated body is a full create request).
COUNT_TOKENS_DROPS: Final = frozenset(
    {"max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier", "container"}
)


class ClaudeCodec(Codec):
    """Anthropic Messages ↔ IR."""

    name = NAME
    counts_tokens = True
    model_paths = ("model", ("model",), ("message", "model"))
    passthrough_header_prefixes = ("anthropic-ratelimit", "x-ratelimit", "request-id", "x-request-id")

    def decode_request(self, body: bytes) -> ir.Request:
        return decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return decode_response(body)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return encode_response(resp)

    def stream_decoder(self, req: ir.Request | None = None) -> ClaudeStreamDecoder:
        return ClaudeStreamDecoder()

    def stream_encoder(self, req: ir.Request) -> ClaudeStreamEncoder:
        return ClaudeStreamEncoder(req)

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        return error_body(status, message, kind)

    def is_native_error(self, body: bytes) -> bool:
        return is_claude_error(body)

    def stream_error(self, exc: ProxyError) -> bytes:
        """Messages streams report failures as an ``event: error`` carrying the error envelope."""
        body = error_body(exc.status, stream_error_message(exc), exc.kind)
        return b"event: error\ndata: " + body + b"\n\n"

    def relay_check(self) -> ClaudeRelayCheck:
        return ClaudeRelayCheck(self)

    def count_tokens_request(self, body: bytes, model: str) -> bytes:
        """Drops the fields only message creation accepts; everything that costs tokens stays."""
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return body  # the upstream reports a broken body better than we can
        if not isinstance(data, dict) or COUNT_TOKENS_DROPS.isdisjoint(data):
            return body
        for key in COUNT_TOKENS_DROPS.intersection(data):
            del data[key]
        return _ENC.encode(data)


CODEC: Final = ClaudeCodec()
