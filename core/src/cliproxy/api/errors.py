"""Errors rendered in each client's own API shape (OpenAI, Claude or Gemini), with the right status.

An upstream error body that already belongs to the client's API family is passed through verbatim, so SDKs see
exactly what the provider said; anything else is re-wrapped, keeping the upstream message and status.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import ErrorKind, ProxyError, UpstreamError, kind_for_status
from ..logging import redact

__all__ = ["error_body", "family", "render_error", "stream_error_bytes", "upstream_message"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_OPENAI_TYPES: dict[ErrorKind, str] = {
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
_CLAUDE_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "server": "api_error",
    "overloaded": "overloaded_error",
    "unavailable": "api_error",
    "timeout": "api_error",
}
_GEMINI_STATUS: dict[ErrorKind, str] = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "request_too_large": "INVALID_ARGUMENT",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "server": "INTERNAL",
    "overloaded": "UNAVAILABLE",
    "unavailable": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
}


def family(dialect: str) -> str:
    if dialect.startswith("openai"):
        return "openai"
    if dialect.startswith("gemini"):
        return "gemini"
    return dialect


def _detect_family(body: bytes) -> tuple[str | None, Any]:
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return None, None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        return None, data
    if data.get("type") == "error" and isinstance(data.get("error"), dict):
        return "claude", data
    err = data.get("error")
    if isinstance(err, dict):
        if isinstance(err.get("status"), str) and isinstance(err.get("code"), int):
            return "gemini", data
        if "message" in err:
            return "openai", data
    return None, data


def upstream_message(body: bytes, fallback: str) -> str:
    """The human message inside an upstream error body of any family."""
    _, data = _detect_family(body)
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(data.get("message"), str):
            return str(data["message"])
    text = body.decode("utf-8", "replace").strip()
    return text[:2000] if text else fallback


def error_body(
    dialect: str, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None
) -> bytes:
    kind = kind or kind_for_status(status)
    message = redact(message)
    fam = family(dialect)
    if fam == "claude":
        return _encode({"type": "error", "error": {"type": _CLAUDE_TYPES[kind], "message": message}})
    if fam == "gemini":
        return _encode({"error": {"code": status, "message": message, "status": _GEMINI_STATUS[kind]}})
    return _encode({"error": {"message": message, "type": _OPENAI_TYPES[kind], "param": None, "code": code}})


def render_error(dialect: str, exc: ProxyError) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for a failed request in ``dialect``."""
    headers = dict(exc.headers)
    if isinstance(exc, UpstreamError) and exc.body:
        fam, _ = _detect_family(exc.body)
        if fam == family(dialect):
            # Verbatim, except that an upstream echoing a key or token never gets it to the client.
            return exc.status, redact(exc.body.decode("utf-8", "replace")).encode(), headers
        return exc.status, error_body(dialect, exc.status, upstream_message(exc.body, exc.message)), headers
    if isinstance(exc, UpstreamError) and exc.retry_after is not None and "Retry-After" not in headers:
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    return exc.status, error_body(dialect, exc.status, exc.message, exc.kind, exc.code), headers


def stream_error_bytes(dialect: str, exc: ProxyError) -> bytes:
    """In-band error event for a stream that already started (status line already sent)."""
    message = exc.message
    if isinstance(exc, UpstreamError) and exc.body:
        message = upstream_message(exc.body, exc.message)
    body = error_body(dialect, exc.status, message, exc.kind, exc.code)
    if dialect == "claude":
        return b"event: error\ndata: " + body + b"\n\n"
    if dialect == "openai-response":
        payload = _encode(
            {
                "type": "error",
                "code": exc.code or _OPENAI_TYPES[exc.kind],
                "message": redact(message),
                "param": None,
                "sequence_number": 0,
            }
        )
        return b"event: error\ndata: " + payload + b"\n\n"
    return b"data: " + body + b"\n\n"
