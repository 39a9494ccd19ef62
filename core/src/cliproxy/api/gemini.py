"""Gemini-dialect routes under ``/v1beta`` and ``/v1`` (google-genai 3.x defaults to ``/v1``).

Model names may contain ``/`` (``moonshotai/kimi-k2``) and ``:`` (``kimi-k2:free``): the action is whatever
follows the *last* colon of the path.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from ..errors import ProxyError
from ..execute import StreamAnswer
from ..registries import ModelInfo
from ..sse import SSEParser
from .common import Exec, Models, Pool, context, probe, to_response, visible_models

__all__ = ["GeminiController", "GeminiV1Controller", "gemini_model", "split_model_action"]

_encode = msgspec.json.encode
_STARTED = int(time.time())
ACTIONS = {
    "generateContent": ("generate", False),
    "streamGenerateContent": ("generate", True),
    "countTokens": ("count_tokens", False),
}


def split_model_action(path: str) -> tuple[str, str]:
    path = path.lstrip("/")
    model, sep, action = path.rpartition(":")
    if not sep or not model:
        raise ProxyError(404, f"models/{path} not found: expected models/<model>:<method>")
    if model.startswith("models/"):
        model = model[len("models/") :]
    return model, action


def gemini_model(m: ModelInfo) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": m.id if m.id.startswith("models/") else f"models/{m.id}",
        "version": m.version or "001",
        "displayName": m.display_name or m.id,
        "description": m.description or m.display_name or m.id,
        "supportedGenerationMethods": list(m.supported_methods or ("generateContent",)),
    }
    if m.input_token_limit:
        item["inputTokenLimit"] = m.input_token_limit
    if m.output_token_limit:
        item["outputTokenLimit"] = m.output_token_limit
    if m.thinking is not None:
        item["thinking"] = True
    return item


async def _json_array(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-frame SSE chunks as Google's streamed JSON array (``alt=json``)."""
    parser = SSEParser()
    first = True
    async for raw in chunks:
        out = b""
        for ev in parser.feed(raw):
            out += (b"[" if first else b",\r\n") + ev.data
            first = False
        if out:
            yield out
    yield b"[]" if first else b"]"


async def _generate(request: Request[Any, Any, Any], execution: Any, path: str) -> Response[Any]:
    model, action = split_model_action(path)
    if action not in ACTIONS:
        raise ProxyError(
            404, f"method {action!r} is not supported: use generateContent, streamGenerateContent or countTokens"
        )
    kind, stream = ACTIONS[action]
    body = await request.body()
    probe(body, "gemini", kind)  # the model is in the path; this checks the body's structure
    result = await execution.handle("gemini", body, model, stream, context(request, kind))
    alt = request.query_params.get("alt") or request.query_params.get("$alt") or ""
    if isinstance(result, StreamAnswer) and alt not in ("", "sse"):
        result = StreamAnswer(_json_array(result.chunks), {"Cache-Control": "no-cache"}, "application/json")
    return to_response(result)


def _list(models: Any, pool: Any) -> Response[bytes]:
    body = {"models": [gemini_model(m) for m in visible_models(models, pool)]}
    return Response(_encode(body), media_type="application/json")


def _get(models: Any, pool: Any, name: str) -> ModelInfo:
    name = name.lstrip("/")
    if name.startswith("models/"):
        name = name[len("models/") :]
    for m in visible_models(models, pool):
        if m.id.lower() == name.lower():
            return m
    raise ProxyError(404, f"models/{name} is not found or has no credential")


class GeminiController(Controller):
    path = "/v1beta"

    @get("/models", sync_to_thread=False)
    def list_models(self, models: Models, pool: Pool) -> Response[bytes]:
        return _list(models, pool)

    @get("/models/{name:path}", sync_to_thread=False)
    def get_model(self, name: FromPath[str], models: Models, pool: Pool) -> Response[bytes]:
        return Response(_encode(gemini_model(_get(models, pool, name))), media_type="application/json")

    @post("/models/{model_action:path}", status_code=200)
    async def generate(
        self, request: Request[Any, Any, Any], model_action: FromPath[str], execution: Exec
    ) -> Response[Any]:
        return await _generate(request, execution, model_action)


def _wants_gemini(request: Request[Any, Any, Any]) -> bool:
    headers = request.headers
    return (
        "x-goog-api-key" in headers
        or "key" in request.query_params
        or "google-genai" in headers.get("x-goog-api-client", "")
    )


class GeminiV1Controller(Controller):
    """``/v1/models/{model}`` is Gemini's v1 surface and OpenAI's model retrieval: the caller decides."""

    path = "/v1/models"

    @get("/{name:path}", sync_to_thread=False)
    def get_model(
        self, request: Request[Any, Any, Any], name: FromPath[str], models: Models, pool: Pool
    ) -> Response[bytes]:
        m = _get(models, pool, name)
        if _wants_gemini(request):
            return Response(_encode(gemini_model(m)), media_type="application/json")
        body = {"id": m.id, "object": "model", "created": m.created or _STARTED, "owned_by": m.owned_by or m.type}
        return Response(_encode(body), media_type="application/json")

    @post("/{model_action:path}", status_code=200)
    async def generate(
        self, request: Request[Any, Any, Any], model_action: FromPath[str], execution: Exec
    ) -> Response[Any]:
        return await _generate(request, execution, model_action)
