"""Fake OpenAI Chat Completions upstream (also the shape of every "OpenAI-compatible" provider)."""

from __future__ import annotations

import time
from collections.abc import Sequence
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

__all__ = ["FakeOpenAIChat", "openai_error_body", "openai_error_shape"]

_ERROR_SHAPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}


def openai_error_shape(status: int) -> tuple[str, str | None]:
    return _ERROR_SHAPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))


def openai_error_body(status: int, message: str, reply: Reply) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as api.openai.com sends it."""
    kind, code = openai_error_shape(status)
    if reply.error_type:
        kind = reply.error_type
    if reply.error_code:
        code = reply.error_code
    return dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def validate_chat(rec: Recorded) -> str | None:
    def load() -> Any:
        from openai.types.chat import completion_create_params as p

        return p.CompletionCreateParamsStreaming if rec.json.get("stream") else p.CompletionCreateParamsNonStreaming

    key = "openai.chat.stream" if rec.json.get("stream") else "openai.chat"
    return validate_sdk_type(key, load, rec.json)


def content_text(content: Any) -> str:
    """Text of an OpenAI-style ``content`` (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


class FakeOpenAIChat(FakeUpstream):
    """``POST {prefix}/chat/completions`` and ``GET {prefix}/models`` exactly as OpenAI answers them.

    ``reasoning_field`` names the non-standard delta/message field used for ``Reply.reasoning`` (DeepSeek,
    vLLM and OpenRouter use ``reasoning_content``/``reasoning``); ``None`` drops reasoning like OpenAI does.
    """

    dialect: ClassVar[str] = "openai-chat"
    request_id_header: ClassVar[str | None] = "x-request-id"

    def __init__(
        self,
        *,
        prefix: str = "/v1",
        keys: Sequence[str] | None = None,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        allow_fields: Sequence[str] = (),
        reasoning_field: str | None = "reasoning_content",
    ) -> None:
        super().__init__(keys=keys, handler=handler, validate=validate, models=models, allow_fields=allow_fields)
        self.prefix = prefix.rstrip("/")
        self.reasoning_field = reasoning_field

    def default_models(self) -> list[str]:
        return ["gpt-4o-mini", "gpt-4o"]

    def route(self, method: str, path: str) -> Endpoint | None:
        if method == "POST" and path == f"{self.prefix}/chat/completions":
            return Endpoint(self._chat, validate_chat)
        if method == "GET" and path == f"{self.prefix}/models":
            return Endpoint(self._models, scripted=False)
        if method == "GET" and path.startswith(f"{self.prefix}/models/"):
            return Endpoint(self._model, scripted=False)
        return None

    def error_body(self, status: int, message: str, reply: Reply) -> bytes:
        return openai_error_body(status, message, reply)

    def unauthorized(self, key: str | None) -> Reply:
        if not key:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            msg = f"Incorrect API key provided: {key[:3]}***{key[-4:]}."
        return Reply(status=401, error_message=msg)

    def not_found(self, rec: Recorded) -> Reply:
        return Reply(status=404, error_message=f"Invalid URL ({rec.method} {rec.path})")

    def last_user_text(self, rec: Recorded) -> str:
        messages = rec.json.get("messages") if isinstance(rec.json, dict) else None
        for msg in reversed(messages or []):
            if isinstance(msg, dict) and msg.get("role") == "user":
                return content_text(msg.get("content"))
        return ""

    # -- rendering -------------------------------------------------------------------------------------------
    async def _models(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"} for m in self.models]
        await self.send_json(conn, reply, {"object": "list", "data": data})

    async def _model(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        model_id = rec.path.rsplit("/", 1)[-1]
        if model_id not in self.models:
            msg = f"The model '{model_id}' does not exist or you do not have access to it."
            await self.send_error(conn, Reply(status=404, error_message=msg, error_code="model_not_found"))
            return
        await self.send_json(
            conn, reply, {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "openai"}
        )

    def _tool_ids(self, reply: Reply) -> list[str]:
        return [tc.id or new_id("call_") for tc in reply.tool_calls]

    @staticmethod
    def usage_obj(reply: Reply) -> dict[str, Any]:
        u = reply.usage
        return {
            "prompt_tokens": u.input,
            "completion_tokens": u.output,
            "total_tokens": u.total,
            "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def _chat(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        body: dict[str, Any] = rec.json
        model = reply.model or str(body.get("model") or self.models[0])
        cid = reply.id or new_id("chatcmpl-")
        created = int(time.time())
        ids = self._tool_ids(reply)
        if body.get("stream"):
            opts = body.get("stream_options") or {}
            include_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
            frames = self._stream_frames(reply, model, cid, created, ids, include_usage)
            await self.send_stream(conn, reply, frames)
            return
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if (reply.text or not reply.tool_calls) else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning and self.reasoning_field:
            message[self.reasoning_field] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tid,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments_json()},
                }
                for tid, tc in zip(ids, reply.tool_calls, strict=True)
            ]
        obj = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": self.usage_obj(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        await self.send_json(conn, reply, obj)

    def _stream_frames(
        self, reply: Reply, model: str, cid: str, created: int, ids: list[str], include_usage: bool
    ) -> list[bytes]:
        base: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj = {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                obj["usage"] = None
            return sse(dumps(obj))

        # OpenAI opens with content "" for text answers and content null for pure tool-call answers.
        opening = "" if (reply.text or not reply.tool_calls) else None
        frames = [chunk({"role": "assistant", "content": opening, "refusal": None})]
        if reply.reasoning and self.reasoning_field:
            frames += [chunk({self.reasoning_field: p}) for p in split_text(reply.reasoning, reply.chunks)]
        frames += [chunk({"content": p}) for p in split_text(reply.text, reply.chunks)]
        for index, (tid, tc) in enumerate(zip(ids, reply.tool_calls, strict=True)):
            head = {
                "index": index,
                "id": tid,
                "type": "function",
                "function": {"name": tc.name, "arguments": ""},
            }
            frames.append(chunk({"tool_calls": [head]}))
            for frag in split_fragments(tc.arguments_json(), reply.chunks):
                frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": frag}}]}))
        frames.append(chunk({}, reply.finish_reason))
        if include_usage:
            frames.append(sse(dumps({**base, "choices": [], "usage": self.usage_obj(reply)})))
        frames.append(sse(b"[DONE]"))
        return frames
