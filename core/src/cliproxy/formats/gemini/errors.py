"""Google's error envelope ``{"error": {"code", "message", "status"}}``, shared by Gemini and Gemini CLI.

``status`` is Google's canonical status name: the exact one where an HTTP status has one, else the one for the
dialect-neutral error kind. Gemini streams report failures in-band with the same envelope as a ``data:`` chunk.
"""

from __future__ import annotations

from typing import Final

from ...errors import ErrorKind, error_json, kind_for_status
from ...logging import redact
from .wire import _encode

__all__ = ["STATUS_BY_HTTP", "STATUS_NAMES", "error_body", "error_envelope", "is_google_error", "status_name"]

#: HTTP statuses with an exact canonical status name.
STATUS_BY_HTTP: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: The canonical status name for each dialect-neutral error kind (for every other HTTP status).
STATUS_NAMES: Final[dict[str, str]] = {
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


def status_name(status: int, kind: ErrorKind | None = None) -> str:
    return STATUS_BY_HTTP.get(status) or STATUS_NAMES[kind or kind_for_status(status)]


def error_envelope(status: int, message: str, kind: ErrorKind | None = None) -> bytes:
    """The envelope as written, message untouched (stream encoders report the upstream's own words)."""
    return _encode({"error": {"code": status, "message": message, "status": status_name(status, kind)}})


def error_body(status: int, message: str, kind: ErrorKind | None = None) -> bytes:
    """An error answer for a client; secrets in ``message`` are redacted."""
    return error_envelope(status, redact(message), kind)


def is_google_error(body: bytes) -> bool:
    """An integer ``code`` beside a string ``status`` is Google's envelope (OpenAI's ``code`` is a string)."""
    data = error_json(body)
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict) or data.get("type") == "error":
        return False
    return isinstance(err.get("status"), str) and isinstance(err.get("code"), int)
