"""Client authentication and CORS as one ASGI middleware (runs before routing, so it costs one dict lookup).

Keys are accepted from ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key``, ``?key=`` or
``?auth_token=``, compared in constant time. Failures are answered in the caller's own API error shape.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ..formats.base import Codec
from .errors import codec_for

__all__ = ["CORS", "AccessMiddleware", "dialect_for_path", "extract_key"]

ASGIApp = Callable[..., Any]

CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]
#: The same CORS headers as a dict, for Litestar responses.
CORS = {k.decode(): v.decode() for k, v in CORS_HEADERS}
_PROTECTED = ("/v1/", "/v1beta/", "/v1beta1/")


def dialect_for_path(path: str, user_agent: str = "") -> str:
    """Which API family answers errors for ``path``."""
    if path.startswith("/v1/messages"):
        return "claude"
    if path.startswith(("/v1beta", "/v1internal")) or (path.startswith("/v1/models/") and ":" in path):
        return "gemini"
    if path.startswith("/v1/responses"):
        return "openai-response"
    if path == "/v1/models" and user_agent.startswith("claude-cli"):
        return "claude"
    return "openai"


def extract_key(headers: dict[bytes, bytes], query: bytes) -> list[str]:
    out: list[str] = []
    auth = headers.get(b"authorization")
    if auth:
        value = auth.decode("latin-1").strip()
        scheme, _, token = value.partition(" ")
        out.append(token.strip() if scheme.lower() == "bearer" and token else value)
    for name in (b"x-goog-api-key", b"x-api-key"):
        raw = headers.get(name)
        if raw:
            out.append(raw.decode("latin-1").strip())
    if query:
        for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=False):
            if k in ("key", "auth_token"):
                out.append(v)
    return out


class AccessMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        keys: Callable[[], list[str]],
        codecs: Callable[[], Mapping[str, Codec]] | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        #: The codec registry, for 401 bodies in the caller's dialect (built-ins when not given).
        self.codecs = codecs

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": CORS_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        path: str = scope["path"]
        keys = self.keys()
        if keys and path.startswith(_PROTECTED):
            headers = dict(scope["headers"])
            candidates = extract_key(headers, scope.get("query_string", b""))
            if not candidates or not _matches(candidates, keys):
                ua = headers.get(b"user-agent", b"").decode("latin-1")
                msg = "Missing API key" if not candidates else "Invalid API key"
                codec = codec_for(dialect_for_path(path, ua), self.codecs() if self.codecs else None)
                body = codec.error_body(401, msg, "authentication", "invalid_api_key")
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), *CORS_HEADERS],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        # CORS headers come with each response (see ``CORS``), so ``send`` is not wrapped per message.
        await self.app(scope, receive, send)


def _matches(candidates: list[str], keys: list[str]) -> bool:
    ok = False
    for cand in candidates:
        c = cand.encode()
        for key in keys:
            # Check every key so timing does not reveal which (or whether an early one) matched.
            ok |= hmac.compare_digest(c, key.encode())
    return ok
