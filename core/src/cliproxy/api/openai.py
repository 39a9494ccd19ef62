"""OpenAI-dialect routes: model listing and Chat Completions."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post

from ..errors import ProxyError
from .common import Exec, Models, Pool, context, probe, to_response, visible_models
from .legacy import completion_request, completion_response

__all__ = ["OpenAIController"]

_encode = msgspec.json.encode
_STARTED = int(time.time())


class OpenAIController(Controller):
    path = "/v1"

    @get("/models", sync_to_thread=False)
    def list_models(
        self,
        request: Request[Any, Any, Any],
        models: Models,
        pool: Pool,
    ) -> Response[bytes]:
        infos = visible_models(models, pool)
        if request.headers.get("user-agent", "").startswith("claude-cli"):
            data: list[dict[str, Any]] = []
            for m in infos:
                item: dict[str, Any] = {"id": m.id, "object": "model", "owned_by": m.owned_by or m.type}
                item["created"] = m.created or _STARTED
                if m.type:
                    item["type"] = m.type
                if m.display_name:
                    item["display_name"] = m.display_name
                data.append(item)
            return Response(_encode({"data": data, "has_more": False}), media_type="application/json")
        body = {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": m.created or _STARTED, "owned_by": m.owned_by or m.type}
                for m in infos
            ],
        }
        return Response(_encode(body), media_type="application/json")

    @post("/chat/completions", status_code=200)
    async def chat_completions(self, request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
        body = await request.body()
        p = probe(body, "openai")
        result = await execution.handle("openai", body, p.model or "", p.stream is True, context(request))
        return to_response(result)

    @post("/responses", status_code=200)
    async def responses(self, request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
        body = await request.body()
        p = probe(body, "openai-response")
        result = await execution.handle("openai-response", body, p.model or "", p.stream is True, context(request))
        return to_response(result)

    @post("/completions", status_code=200)
    async def completions(self, request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
        """Legacy text completions, served through the chat pipeline."""
        body = await request.body()
        p = probe(body)
        if not p.model:
            raise ProxyError(400, "model: required")
        chat = completion_request(body)
        result = await execution.handle("openai", chat, p.model, p.stream is True, context(request))
        return to_response(completion_response(result))
