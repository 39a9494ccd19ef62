"""OpenAI Responses errors: the OpenAI envelope for HTTP answers, ``error`` codes, and the in-band ``error``
stream event.

HTTP error bodies are the OpenAI envelope shared with Chat Completions. Inside a stream the Responses API uses
string codes (``rate_limit_exceeded``, ``invalid_prompt`` ...) both in ``event: error`` and in the ``error`` of
a ``response.failed`` object.
"""

from __future__ import annotations

from typing import Final

from ...errors import ProxyError
from ...logging import redact
from ..base import stream_error_message
from ..openai_chat.errors import error_type
from .wire import _encode

__all__ = ["error_code", "status_for_code", "stream_error_event"]

_CODE_STATUS: Final[dict[str, int]] = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
}


def error_code(status: int) -> str:
    """The ``error.code`` of a ``response.failed`` object for an HTTP status."""
    if status == 429:
        return "rate_limit_exceeded"
    if status in (400, 413, 422):
        return "invalid_prompt"
    return "server_error"


def status_for_code(code: str | None) -> int:
    """The HTTP status an upstream's Responses error code stands for."""
    return _CODE_STATUS.get(code or "", 500)


def stream_error_event(exc: ProxyError) -> bytes:
    """``event: error`` as the Responses API sends it when a stream fails."""
    payload = {
        "type": "error",
        "code": exc.code or error_type(exc.kind),
        "message": redact(stream_error_message(exc)),
        "param": None,
        "sequence_number": 0,
    }
    return b"event: error\ndata: " + _encode(payload) + b"\n\n"
