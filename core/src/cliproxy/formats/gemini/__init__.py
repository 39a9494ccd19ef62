"""Gemini ``generateContent`` (dialect ``gemini``, Generative Language v1beta REST JSON).

``wire`` holds the msgspec Structs, ``schema`` the snake_case and JSON-schema handling, ``request``/
``response``/``stream`` map bodies and events to and from the IR (with the mappings they share in ``mapping``),
``count`` the ``countTokens`` shapes and ``errors`` Google's error envelope; :class:`GeminiCodec` ties them
together for the codec registry. The Gemini CLI codec (:mod:`cliproxy.formats.gemini_cli`) reuses all of it
inside its envelope.
"""

from __future__ import annotations

from typing import Final

from ... import ir
from ...errors import ErrorKind
from ..base import Codec
from .count import (
    count_tokens_request,
    count_tokens_request_dict,
    decode_count_tokens_response,
    encode_count_tokens_response,
    shape_count_tokens_request,
)
from .errors import error_body, is_google_error
from .mapping import name_map, restore_function_name, sanitize_function_name
from .request import decode_request, decode_request_dict, encode_request, encode_request_dict
from .response import decode_response, encode_response, response_struct
from .schema import clean_schema_for_gemini
from .stream import GeminiRelayCheck, GeminiStreamDecoder, GeminiStreamEncoder
from .wire import (
    DEFAULT_SAFETY_SETTINGS,
    NAME,
    SKIP_THOUGHT_SIGNATURE,
    ErrorBody,
    GenerateContentResponse,
    _encode,
)

__all__ = [
    "CODEC",
    "DEFAULT_SAFETY_SETTINGS",
    "NAME",
    "SKIP_THOUGHT_SIGNATURE",
    "ErrorBody",
    "GeminiCodec",
    "GeminiRelayCheck",
    "GeminiStreamDecoder",
    "GeminiStreamEncoder",
    "GenerateContentResponse",
    "clean_schema_for_gemini",
    "count_tokens_request_dict",
    "decode_count_tokens_response",
    "decode_request_dict",
    "encode_count_tokens_response",
    "encode_request_dict",
    "name_map",
    "response_struct",
    "restore_function_name",
    "sanitize_function_name",
    "shape_count_tokens_request",
]


class GeminiCodec(Codec):
    """Gemini ``generateContent`` / ``streamGenerateContent`` bodies ↔ IR.

    ``decode_response`` and ``stream_decoder`` optionally take the IR request so tool names that had to be
    sanitised for Gemini are restored to the client's spelling.
    """

    name = NAME
    counts_tokens = True

    def decode_request(self, body: bytes) -> ir.Request:
        return decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return decode_response(body, name_map(req))

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return encode_response(resp)

    def stream_decoder(self, req: ir.Request | None = None) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(name_map(req))

    def stream_encoder(self, req: ir.Request) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(req)

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        """Google's envelope; the base ``stream_error`` frames it as a ``data:`` chunk, as Gemini streams do."""
        return error_body(status, message, kind)

    def is_native_error(self, body: bytes) -> bool:
        return is_google_error(body)

    def relay_check(self) -> GeminiRelayCheck:
        return GeminiRelayCheck(self)

    def count_tokens_request(self, body: bytes, model: str) -> bytes:
        return count_tokens_request(body, model)

    def encode_count_tokens_request(self, req: ir.Request) -> bytes:
        """A ``countTokens`` body built from the IR: only the fields the endpoint accepts."""
        return _encode({"generateContentRequest": count_tokens_request_dict(req)})

    def encode_count_tokens_response(self, total: int) -> bytes:
        return encode_count_tokens_response(total)

    def decode_count_tokens_response(self, body: bytes) -> int:
        return decode_count_tokens_response(body)

    def rewrite_model(self, body: bytes, model: str) -> bytes:
        """The model is part of the URL, not the body: the client's body goes upstream untouched."""
        return body


CODEC: Final = GeminiCodec()
