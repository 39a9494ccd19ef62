"""Errors rendered in each client's own API shape, with the right status.

The client dialect's codec owns the shape (see ``Codec.error_body``). An upstream error body that already is in
the client's shape is passed through verbatim, so SDKs see exactly what the provider said; anything else is
re-wrapped, keeping the upstream message and status.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ErrorKind, ProxyError, UpstreamError, upstream_message
from ..formats.base import Codec
from ..formats.builtin import CODECS
from ..logging import redact

__all__ = ["codec_for", "error_body", "render_error"]

#: Dialect whose envelope answers requests on paths no codec claims.
_FALLBACK = "openai"


def codec_for(dialect: str, codecs: Mapping[str, Codec] | None = None) -> Codec:
    """The codec answering errors for ``dialect`` from the container's registry (built-ins when not given)."""
    table = CODECS if codecs is None else codecs
    return table.get(dialect) or table.get(_FALLBACK) or CODECS[_FALLBACK]


def error_body(
    dialect: str,
    status: int,
    message: str,
    kind: ErrorKind | None = None,
    code: str | None = None,
    codecs: Mapping[str, Codec] | None = None,
) -> bytes:
    return codec_for(dialect, codecs).error_body(status, message, kind, code)


def render_error(
    dialect: str, exc: ProxyError, codecs: Mapping[str, Codec] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for a failed request in ``dialect``."""
    codec = codec_for(dialect, codecs)
    headers = dict(exc.headers)
    if isinstance(exc, UpstreamError) and exc.body:
        if codec.is_native_error(exc.body):
            # Verbatim, except that an upstream echoing a key or token never gets it to the client.
            return exc.status, redact(exc.body.decode("utf-8", "replace")).encode(), headers
        return exc.status, codec.error_body(exc.status, upstream_message(exc.body, exc.message)), headers
    if isinstance(exc, UpstreamError) and exc.retry_after is not None and "Retry-After" not in headers:
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    return exc.status, codec.error_body(exc.status, exc.message, exc.kind, exc.code), headers
