"""Fake Anthropic Messages upstream (API keys and Claude Code OAuth tokens alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .base import (
    Conn,
    Endpoint,
    FakeUpstream,
    Handler,
    Recorded,
    Reply,
    dumps,
    new_id,
    split_fragments,
    split_text,
    sse,
    validate_sdk_type,
)

__all__ = ["FakeClaude", "claude_error_type"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def claude_error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def _validator(kind: str) -> Any:
    def validate(rec: Recorded) -> str | None:
        beta = rec.query.get("beta") == "true"
        stream = bool(rec.json.get("stream"))

        def load() -> Any:
            if kind == "count":
                if beta:
                    from anthropic.types.beta import message_count_tokens_params as c

                    return c.MessageCountTokensParams
                from anthropic.types import message_count_tokens_params as c2

                return c2.MessageCountTokensParams
            if beta:
                from anthropic.types.beta import message_create_params as b

                return b.MessageCreateParamsStreaming if stream else b.MessageCreateParamsNonStreaming
            from anthropic.types import message_create_params as m

            return m.MessageCreateParamsStreaming if stream else m.MessageCreateParamsNonStreaming

        if "betas" in rec.json:  # an SDK argument that travels as the anthropic-beta header, never in the body
            return "betas: Extra inputs are not permitted"
        key = f"anthropic.{kind}.{'beta' if beta else 'ga'}.{stream and kind == 'create'}"
        return validate_sdk_type(key, load, rec.json)

    return validate


class FakeClaude(FakeUpstream):
    """``POST /v1/messages`` (``?beta=true`` checked with the beta types) and ``/v1/messages/count_tokens``.

    Keys are read from ``x-api-key`` or ``Authorization: Bearer`` (OAuth). With ``require_version`` a missing
    ``anthropic-version`` header is a 400, as on api.anthropic.com.
    """

    dialect: ClassVar[str] = "claude"
    request_id_header: ClassVar[str | None] = "request-id"

    def __init__(
        self,
        *,
        keys: Sequence[str] | None = None,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        allow_fields: Sequence[str] = (),
        require_version: bool = True,
    ) -> None:
        super().__init__(keys=keys, handler=handler, validate=validate, models=models, allow_fields=allow_fields)
        self.require_version = require_version
        self._validate_create = _validator("create")
        self._validate_count = _validator("count")

    def default_models(self) -> list[str]:
        return ["claude-sonnet-5", "claude-opus-5", "claude-haiku-4-5"]

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or super().extract_key(headers, query)

    def route(self, method: str, path: str) -> Endpoint | None:
        if method == "POST" and path == "/v1/messages":
            return Endpoint(self._messages, self._check_create)
        if method == "POST" and path == "/v1/messages/count_tokens":
            return Endpoint(self._count, self._check_count)
        if method == "GET" and path == "/v1/models":
            return Endpoint(self._models, scripted=False)
        return None

    def _check_version(self, rec: Recorded) -> str | None:
        if self.require_version and not rec.header("anthropic-version"):
            return "anthropic-version: header is required"
        return None

    def _check_create(self, rec: Recorded) -> str | None:
        return self._check_version(rec) or self._validate_create(rec)

    def _check_count(self, rec: Recorded) -> str | None:
        return self._check_version(rec) or self._validate_count(rec)

    def error_body(self, status: int, message: str, reply: Reply) -> bytes:
        kind = reply.error_type or claude_error_type(status)
        return dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_")})

    def unauthorized(self, key: str | None) -> Reply:
        return Reply(status=401, error_message="invalid x-api-key")

    def not_found(self, rec: Recorded) -> Reply:
        return Reply(status=404, error_message="Not Found")

    def last_user_text(self, rec: Recorded) -> str:
        messages = rec.json.get("messages") if isinstance(rec.json, dict) else None
        for msg in reversed(messages or []):
            if isinstance(msg, dict) and msg.get("role") == "user":
                content = msg.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
                    return " ".join(str(t) for t in texts)
        return ""

    # -- rendering -------------------------------------------------------------------------------------------
    async def _models(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in self.models
        ]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        await self.send_json(conn, reply, {"data": data, "has_more": False, "first_id": first, "last_id": last})

    async def _count(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        await self.send_json(conn, reply, {"input_tokens": reply.usage.input})

    @staticmethod
    def usage_obj(reply: Reply, *, output: int | None = None) -> dict[str, Any]:
        u = reply.usage
        return {
            "input_tokens": max(u.input - u.cached, 0),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": u.cached,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": u.output if output is None else output,
            "service_tier": "standard",
        }

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning:
            blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": reply.reasoning_signature()})
        if reply.text or not reply.tool_calls:
            blocks.append({"type": "text", "text": reply.text})
        for tc in reply.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tc.id or new_id("toolu_"),
                    "name": tc.name,
                    "input": tc.arguments_dict(),
                }
            )
        return blocks

    async def _messages(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        model = reply.model or str(rec.json.get("model") or self.models[0])
        mid = reply.id or new_id("msg_")
        stop = _STOP.get(reply.finish_reason, reply.finish_reason)
        blocks = self._blocks(reply)
        message = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self.usage_obj(reply),
        }
        if not rec.json.get("stream"):
            await self.send_json(conn, reply, message)
            return
        await self.send_stream(conn, reply, self._frames(message, reply), "text/event-stream; charset=utf-8")

    def _frames(self, message: dict[str, Any], reply: Reply) -> list[bytes]:
        frames: list[bytes] = []

        def ev(kind: str, **fields: Any) -> None:
            frames.append(sse(dumps({"type": kind, **fields}), kind))

        start = dict(message, content=[], stop_reason=None, stop_sequence=None, usage=self.usage_obj(reply, output=1))
        ev("message_start", message=start)
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "thinking":
                ev(
                    "content_block_start",
                    index=index,
                    content_block={"type": "thinking", "thinking": "", "signature": ""},
                )
            elif kind == "text":
                ev("content_block_start", index=index, content_block={"type": "text", "text": ""})
            else:
                head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                ev("content_block_start", index=index, content_block=head)
            if index == 0:
                ev("ping")
            if kind == "thinking":
                for piece in split_text(block["thinking"], reply.chunks):
                    ev(
                        "content_block_delta",
                        index=index,
                        delta={"type": "thinking_delta", "thinking": piece},
                    )
                ev(
                    "content_block_delta",
                    index=index,
                    delta={"type": "signature_delta", "signature": block["signature"]},
                )
            elif kind == "text":
                for piece in split_text(block["text"], reply.chunks):
                    ev("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
            else:
                args = dumps(block["input"]).decode() if block["input"] else ""
                pieces = ["", *split_fragments(args, reply.chunks)]
                for piece in pieces:
                    ev(
                        "content_block_delta",
                        index=index,
                        delta={"type": "input_json_delta", "partial_json": piece},
                    )
            ev("content_block_stop", index=index)
        usage = self.usage_obj(reply)
        delta_usage = {
            k: usage[k]
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        }
        ev(
            "message_delta",
            delta={"stop_reason": message["stop_reason"], "stop_sequence": None},
            usage=delta_usage,
        )
        ev("message_stop")
        return frames
