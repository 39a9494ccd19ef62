"""Anthropic's error envelope ``{"type": "error", "error": {"type", "message"}}`` and its error types.

One table in each direction: ``error.type`` → (HTTP status, error kind) for errors an upstream reports (in a
body or an ``event: error`` stream event), and error kind → ``error.type`` for errors this proxy reports.
"""

from __future__ import annotations

from typing import Final

from ...errors import ErrorKind, error_json, kind_for_status
from ...logging import redact
from .wire import _ENC

__all__ = ["ERROR_STATUS", "ERROR_TYPES", "error_body", "error_status", "error_type", "is_claude_error"]

#: HTTP status and kind of each Anthropic ``error.type``.
ERROR_STATUS: Final[dict[str, tuple[int, ErrorKind]]] = {
    "invalid_request_error": (400, "invalid_request"),
    "authentication_error": (401, "authentication"),
    "billing_error": (402, "permission"),
    "permission_error": (403, "permission"),
    "not_found_error": (404, "not_found"),
    "request_too_large": (413, "request_too_large"),
    "rate_limit_error": (429, "rate_limit"),
    "api_error": (500, "server"),
    "timeout_error": (504, "timeout"),
    "overloaded_error": (529, "overloaded"),
}

#: Anthropic ``error.type`` for each dialect-neutral error kind.
ERROR_TYPES: Final[dict[str, str]] = {
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


def error_status(error_type: str) -> tuple[int, ErrorKind] | None:
    """``(status, kind)`` for an Anthropic ``error.type``; ``None`` when the type is unknown."""
    return ERROR_STATUS.get(error_type)


def error_type(kind: str) -> str:
    return ERROR_TYPES.get(kind, "api_error")


def error_body(status: int, message: str, kind: ErrorKind | None = None) -> bytes:
    err = {"type": ERROR_TYPES[kind or kind_for_status(status)], "message": redact(message)}
    return _ENC.encode({"type": "error", "error": err})


def is_claude_error(body: bytes) -> bool:
    data = error_json(body)
    return isinstance(data, dict) and data.get("type") == "error" and isinstance(data.get("error"), dict)
