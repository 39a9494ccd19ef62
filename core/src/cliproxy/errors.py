"""Error types raised on the request path; each client dialect's codec renders them in its own envelope."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ErrorKind",
    "NoCredentialError",
    "ProxyError",
    "UpstreamError",
    "error_json",
    "kind_for_status",
    "upstream_message",
]

#: Dialect-neutral error category; each client dialect maps it to its own ``type``/``status`` strings.
ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "request_too_large",
    "rate_limit",
    "server",
    "overloaded",
    "unavailable",
    "timeout",
]


def kind_for_status(status: int) -> ErrorKind:
    if status == 400 or status == 422:
        return "invalid_request"
    if status == 401:
        return "authentication"
    if status in (402, 403):
        return "permission"
    if status == 404:
        return "not_found"
    if status == 413:
        return "request_too_large"
    if status == 429:
        return "rate_limit"
    if status == 408 or status == 504:
        return "timeout"
    if status == 529:
        return "overloaded"
    if status == 503:
        return "unavailable"
    return "server" if status >= 500 else "invalid_request"


class ProxyError(Exception):
    """An error answered to the client with ``status`` in the client's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: ErrorKind | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind: ErrorKind = kind or kind_for_status(status)
        self.code = code
        self.headers = headers or {}


class UpstreamError(ProxyError):
    """The upstream answered non-2xx (or could not be reached: ``status`` 502/504, ``network=True``).

    ``body`` is the upstream's raw error body: passed through verbatim when the client speaks the same
    dialect, otherwise its message is re-wrapped.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        body: bytes = b"",
        retry_after: float | None = None,
        network: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.body = body
        self.retry_after = retry_after
        self.network = network


class NoCredentialError(ProxyError):
    """No credential can serve the model right now; ``retry_after`` is set when all are cooling down."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None, code: str) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after is not None else None
        super().__init__(status, message, code=code, headers=headers)
        self.retry_after = retry_after


def error_json(body: bytes) -> Any:
    """An upstream error body decoded (the first element of a JSON array, as Gemini streams send); ``None``
    when it is not JSON."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return data


def upstream_message(body: bytes, fallback: str) -> str:
    """The human message inside an upstream error body of any dialect, else its text (or ``fallback``)."""
    data = error_json(body)
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
