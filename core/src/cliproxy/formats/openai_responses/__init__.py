"""OpenAI Responses API (dialect ``openai-response``): ``/v1/responses`` clients and the Codex upstream.

``wire`` holds the msgspec Structs, ``request``/``response``/``stream`` map them to and from the IR, ``names``
shortens function names for Codex and restores them, and ``errors`` the error codes and stream error event;
:class:`OpenAIResponsesCodec` ties them together for the codec registry. HTTP error bodies use the OpenAI
envelope shared with Chat Completions.
"""

from __future__ import annotations

from typing import Final

from ... import ir
from ...errors import ErrorKind, ProxyError
from ..base import Codec
from ..openai_chat.errors import error_body, is_openai_error
from .errors import stream_error_event
from .names import restore_tool_name, reverse_names, shorten_tool_names
from .request import decode_request, encode_request
from .response import decode_response, encode_response
from .stream import ResponsesRelayCheck, ResponsesStreamDecoder, ResponsesStreamEncoder
from .wire import NAME

__all__ = [
    "CODEC",
    "NAME",
    "OpenAIResponsesCodec",
    "ResponsesRelayCheck",
    "ResponsesStreamDecoder",
    "ResponsesStreamEncoder",
    "restore_tool_name",
    "shorten_tool_names",
]


class OpenAIResponsesCodec(Codec):
    """OpenAI Responses bodies ↔ IR.

    ``decode_response``/``stream_decoder`` optionally take the IR request to restore tool names shortened for
    Codex; ``encode_response`` optionally takes it to echo the request fields into the ``response`` object.
    """

    name = NAME
    model_paths = ("model", ("model",), ("response", "model"))
    passthrough_header_prefixes = ("x-ratelimit", "x-request-id", "request-id", "openai-")

    def decode_request(self, body: bytes) -> ir.Request:
        return decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return decode_response(body, req)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return encode_response(resp, req)

    def stream_decoder(self, req: ir.Request | None = None) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(reverse_names(req))

    def stream_encoder(self, req: ir.Request) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(req)

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        return error_body(status, message, kind, code)

    def is_native_error(self, body: bytes) -> bool:
        return is_openai_error(body)

    def stream_error(self, exc: ProxyError) -> bytes:
        return stream_error_event(exc)

    def relay_check(self) -> ResponsesRelayCheck:
        return ResponsesRelayCheck(self)


CODEC: Final = OpenAIResponsesCodec()
