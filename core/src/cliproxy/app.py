"""Build the Litestar application from the container."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import msgspec
from litestar import Litestar, Request, Response, get, head
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware

from . import __version__
from .api._di import from_container
from .api.access import CORS, AccessMiddleware, dialect_for_path
from .api.claude import ClaudeController
from .api.codeassist import CODE_ASSIST_HANDLERS
from .api.errors import render_error
from .api.gemini import GeminiController, GeminiV1Controller
from .api.openai import OpenAIController
from .container import Container
from .errors import ProxyError
from .execute import ExecutionService
from .formats.base import Codec
from .logging import get_logger
from .models import ModelRegistry
from .pool import CredentialPool

__all__ = ["create_app"]

log = get_logger("cliproxy.app")
_encode = msgspec.json.encode

MAX_BODY_BYTES = 128 * 1024 * 1024

ENDPOINTS = [
    "POST /v1/chat/completions",
    "POST /v1/completions",
    "POST /v1/responses",
    "POST /v1/messages",
    "POST /v1/messages/count_tokens",
    "GET /v1/models",
    "GET /v1beta/models",
    "POST /v1beta/models/{model}:generateContent",
    "POST /v1beta/models/{model}:streamGenerateContent",
    "POST /v1internal:{method}",
]


@get("/", sync_to_thread=False)
def root() -> Response[bytes]:
    body = {"message": "CLI Proxy API Server", "name": "cliproxy", "version": __version__, "endpoints": ENDPOINTS}
    return Response(_encode(body), media_type="application/json")


@head("/", sync_to_thread=False)
def root_head() -> None:
    """Claude Code probes the base URL with HEAD before its first request."""


@get("/healthz", sync_to_thread=False)
def healthz() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type="application/json")


def _dialect(request: Request[Any, Any, Any]) -> str:
    return dialect_for_path(request.url.path, request.headers.get("user-agent", ""))


class _ErrorHandlers:
    """Litestar exception handlers answering in the caller's dialect through the container's codec registry."""

    def __init__(self, formats: Callable[[], Mapping[str, Codec]]) -> None:
        self.formats = formats  # resolved per error, so provider overrides made in tests stay live

    def proxy_error(self, request: Request[Any, Any, Any], exc: ProxyError) -> Response[bytes]:
        status, body, headers = render_error(_dialect(request), exc, self.formats())
        return Response(body, status_code=status, media_type="application/json", headers={**CORS, **headers})

    def http_error(self, request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        message = exc.detail or "error"
        if exc.status_code == 404:
            message = f"{request.method} {request.url.path} is not a cliproxy endpoint"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return self.proxy_error(request, ProxyError(exc.status_code, message))

    def internal_error(self, request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        log.exception("unhandled error", path=request.url.path, error_type=type(exc).__name__)
        return self.proxy_error(request, ProxyError(500, "internal error in cliproxy; see the server log"))


def create_app(container: Container) -> Litestar:
    runtime = container.runtime()  # loads credentials now, so the first request finds them

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        http = container.http()
        container.execution()  # binds the on-demand token refresh and the live retry policy
        # Hot reload and background token refresh; bootstrap config ``hot_reload: False`` turns both off.
        background = container.config.get("hot_reload") is not False
        watcher, refresher = container.watcher(), container.refresher()
        async with AsyncExitStack() as stack:
            for cm in container.host().lifespans(container):
                await stack.enter_async_context(cm)
            if background:
                watcher.start()
                refresher.start()
            try:
                yield
            finally:
                if background:
                    await watcher.stop()
                    await refresher.stop()
                await http.aclose()

    extra_routes, _ = container.host().routes(container)
    errors = _ErrorHandlers(container.formats)
    app = Litestar(
        route_handlers=[
            root,
            root_head,
            healthz,
            OpenAIController,
            ClaudeController,
            GeminiController,
            GeminiV1Controller,
            *CODE_ASSIST_HANDLERS,
            *extra_routes,
        ],
        dependencies={
            "execution": from_container(container.execution, ExecutionService),
            "models": from_container(container.models, ModelRegistry),
            "pool": from_container(container.pool, CredentialPool),
        },
        exception_handlers={
            ProxyError: errors.proxy_error,
            HTTPException: errors.http_error,
            Exception: errors.internal_error,
        },
        middleware=[
            DefineMiddleware(
                cast(Any, AccessMiddleware), keys=lambda: runtime.settings.api_keys, codecs=container.formats
            )
        ],
        lifespan=[lifespan],
        response_headers=[ResponseHeader(name=k, value=v) for k, v in CORS.items()],
        # Litestar's 10 MB default rejects real requests: Claude/Gemini accept prompts with images and PDFs
        # of 20-30 MB, and base64 inflates them by a third.
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        openapi_config=None,
        debug=False,
    )
    app.state["container"] = container
    return app
