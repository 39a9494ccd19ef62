"""OpenAI Chat Completions (dialect ``openai``): chat clients and OpenAI-compatible upstreams.

``wire`` holds the msgspec Structs, ``request``/``response``/``stream`` map them to and from the IR, and
``errors`` the OpenAI error envelope; :class:`OpenAIChatCodec` ties them together for the codec registry.
"""

from __future__ import annotations

from typing import Final

from ... import ir
from ...errors import ErrorKind
from ..base import Codec
from .errors import error_body, is_openai_error
from .request import decode_request, encode_request, parse_data_url
from .response import decode_response, encode_response
from .stream import ChatRelayCheck, ChatStreamDecoder, ChatStreamEncoder
from .wire import NAME

__all__ = [
    "CODEC",
    "NAME",
    "ChatRelayCheck",
    "ChatStreamDecoder",
    "ChatStreamEncoder",
    "OpenAIChatCodec",
    "parse_data_url",
]


class OpenAIChatCodec(Codec):
    """OpenAI Chat Completions ↔ IR."""

    name = NAME
    passthrough_header_prefixes = ("x-ratelimit", "x-request-id", "request-id", "openai-")

    def decode_request(self, body: bytes) -> ir.Request:
        return decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return decode_response(body)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return encode_response(resp)

    def stream_decoder(self, req: ir.Request | None = None) -> ChatStreamDecoder:
        return ChatStreamDecoder()

    def stream_encoder(self, req: ir.Request) -> ChatStreamEncoder:
        return ChatStreamEncoder(req)

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        """OpenAI's envelope; the base ``stream_error`` frames it as ``data: {...}``, as OpenAI streams do."""
        return error_body(status, message, kind, code)

    def is_native_error(self, body: bytes) -> bool:
        return is_openai_error(body)

    def relay_check(self) -> ChatRelayCheck:
        return ChatRelayCheck(self)


CODEC: Final = OpenAIChatCodec()
