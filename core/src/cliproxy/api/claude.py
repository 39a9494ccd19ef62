"""Claude-dialect routes: ``/v1/messages`` and ``/v1/messages/count_tokens`` (Claude Code's ``?beta=true`` too)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post

from .common import Exec, context, probe, to_response

__all__ = ["ClaudeController"]


def _claude_streams(value: Any) -> bool:
    # Anthropic's API streams for any truthy ``stream``; SDKs send a boolean.
    return value is not None and value is not False and value != 0 and value != "false"


class ClaudeController(Controller):
    path = "/v1/messages"

    @post("", status_code=200)
    async def messages(self, request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
        body = await request.body()
        p = probe(body, "claude")
        result = await execution.handle("claude", body, p.model or "", _claude_streams(p.stream), context(request))
        return to_response(result)

    @post("/count_tokens", status_code=200)
    async def count_tokens(self, request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
        body = await request.body()
        p = probe(body, "claude", "count_tokens")
        result = await execution.handle("claude", body, p.model or "", False, context(request, "count_tokens"))
        return to_response(result)
