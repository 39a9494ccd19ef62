"""The OpenAI error envelope ``{"error": {"message", "type", "param", "code"}}``, shared by both OpenAI dialects.

Used for HTTP error answers, for the in-band error chunk of a Chat Completions stream, and to recognise an
upstream body that already is an OpenAI error (relayed verbatim to OpenAI clients).
"""

from __future__ import annotations

from typing import Any, Final

from ... import ir
from ...errors import ErrorKind, error_json, kind_for_status
from ...logging import redact
from .wire import _ENC, _OutError, _OutErrorBody

__all__ = ["ERROR_TYPES", "error_body", "error_type", "is_openai_error", "stream_error_chunk"]

#: OpenAI's ``error.type`` for each dialect-neutral error kind.
ERROR_TYPES: Final[dict[str, str]] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "server": "server_error",
    "overloaded": "server_error",
    "unavailable": "server_error",
    "timeout": "server_error",
}


def error_type(kind: str) -> str:
    return ERROR_TYPES.get(kind, "server_error")


def error_body(status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
    err: dict[str, Any] = {
        "message": redact(message),
        "type": ERROR_TYPES[kind or kind_for_status(status)],
        "param": None,
        "code": code,
    }
    return _ENC.encode({"error": err})


def stream_error_chunk(err: ir.Error) -> bytes:
    """The JSON of the ``data:`` chunk that reports a failure inside a Chat Completions stream."""
    return _ENC.encode(_OutError(_OutErrorBody(message=err.message, type=error_type(err.kind), code=None)))


def is_openai_error(body: bytes) -> bool:
    """``{"error": {"message": ...}}`` that is neither Claude's envelope (top-level ``"type": "error"``) nor
    Google's (an integer ``code`` beside a string ``status``): OpenAI's ``code`` is a string or null."""
    data = error_json(body)
    if not isinstance(data, dict) or data.get("type") == "error":
        return False
    err = data.get("error")
    if not isinstance(err, dict) or "message" not in err:
        return False
    return not (isinstance(err.get("status"), str) and isinstance(err.get("code"), int))
