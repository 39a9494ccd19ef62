"""Fake OpenAI Responses upstream: ``/v1/responses`` and the ChatGPT Codex backend ``/backend-api/codex``."""

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
from .openai_chat import content_text, openai_error_body

__all__ = ["FakeOpenAIResponses"]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def validate_responses(rec: Recorded) -> str | None:
    def load() -> Any:
        from openai.types.responses import response_create_params as p

        return p.ResponseCreateParamsStreaming if rec.json.get("stream") else p.ResponseCreateParamsNonStreaming

    key = "openai.responses.stream" if rec.json.get("stream") else "openai.responses"
    return validate_sdk_type(key, load, rec.json)


class FakeOpenAIResponses(FakeUpstream):
    """``POST {prefix}/responses`` for every prefix in ``prefixes`` (OpenAI and the Codex backend by default).

    Streams the full event lifecycle with ``event:`` lines and ``sequence_number``; a ``length`` finish ends
    with ``response.incomplete`` as OpenAI does. ``Reply.signature`` becomes the reasoning item's
    ``encrypted_content`` (also minted when the request ``include``s ``reasoning.encrypted_content``).
    """

    dialect: ClassVar[str] = "openai-responses"
    request_id_header: ClassVar[str | None] = "x-request-id"

    def __init__(
        self,
        *,
        prefixes: Sequence[str] = ("/v1", "/backend-api/codex"),
        keys: Sequence[str] | None = None,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        allow_fields: Sequence[str] = (),
    ) -> None:
        super().__init__(keys=keys, handler=handler, validate=validate, models=models, allow_fields=allow_fields)
        self.prefixes = [p.rstrip("/") for p in prefixes]

    def default_models(self) -> list[str]:
        return ["gpt-5", "gpt-5-codex"]

    def route(self, method: str, path: str) -> Endpoint | None:
        for prefix in self.prefixes:
            if method == "POST" and path == f"{prefix}/responses":
                return Endpoint(self._responses, validate_responses)
            if method == "GET" and path == f"{prefix}/models":
                return Endpoint(self._models, scripted=False)
        return None

    def error_body(self, status: int, message: str, reply: Reply) -> bytes:
        return openai_error_body(status, message, reply)

    def unauthorized(self, key: str | None) -> Reply:
        return Reply(status=401, error_message="Incorrect API key provided.")

    def last_user_text(self, rec: Recorded) -> str:
        body = rec.json if isinstance(rec.json, dict) else {}
        items = body.get("input")
        if isinstance(items, str):
            return items
        for item in reversed(items or []):
            if isinstance(item, dict) and item.get("role") == "user":
                return content_text(item.get("content"))
        return ""

    async def _models(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"} for m in self.models]
        await self.send_json(conn, reply, {"object": "list", "data": data})

    # -- building blocks -------------------------------------------------------------------------------------
    @staticmethod
    def usage_obj(reply: Reply) -> dict[str, Any]:
        u = reply.usage
        return {
            "input_tokens": u.input,
            "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": 0},
            "output_tokens": u.output,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.total,
        }

    def _envelope(self, rec: Recorded, reply: Reply, rid: str, created: int) -> dict[str, Any]:
        body: dict[str, Any] = rec.json
        reasoning: dict[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
        return {
            "id": rid,
            "object": "response",
            "created_at": created,
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": reply.model or str(body.get("model") or self.models[0]),
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def _items(self, rec: Recorded, reply: Reply) -> list[dict[str, Any]]:
        """Completed output items in order: reasoning, message, function calls."""
        items: list[dict[str, Any]] = []
        include = rec.json.get("include") or []
        if reply.reasoning or reply.signature or "reasoning.encrypted_content" in include:
            item: dict[str, Any] = {
                "id": new_id("rs_"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.reasoning}] if reply.reasoning else [],
            }
            if reply.signature is not None or "reasoning.encrypted_content" in include:
                item["encrypted_content"] = reply.reasoning_signature()
            items.append(item)
        if reply.text or not reply.tool_calls:
            part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            items.append(
                {
                    "id": new_id("msg_"),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for tc in reply.tool_calls:
            items.append(
                {
                    "id": new_id("fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": tc.id or new_id("call_"),
                    "name": tc.name,
                    "arguments": tc.arguments_json(),
                }
            )
        return items

    def _final(self, env: dict[str, Any], reply: Reply, items: list[dict[str, Any]]) -> dict[str, Any]:
        final = dict(env, output=items, usage=self.usage_obj(reply))
        reason = _INCOMPLETE.get(reply.finish_reason)
        if reason:
            final["status"] = "incomplete"
            final["incomplete_details"] = {"reason": reason}
        else:
            final["status"] = "completed"
            final["completed_at"] = int(time.time())
        return final

    async def _responses(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        rid = reply.id or new_id("resp_")
        env = self._envelope(rec, reply, rid, int(time.time()))
        items = self._items(rec, reply)
        final = self._final(env, reply, items)
        if not rec.json.get("stream"):
            await self.send_json(conn, reply, final)
            return
        await self.send_stream(conn, reply, self._frames(env, final, items, reply))

    def _frames(
        self, env: dict[str, Any], final: dict[str, Any], items: list[dict[str, Any]], reply: Reply
    ) -> list[bytes]:
        frames: list[bytes] = []

        def ev(kind: str, **fields: Any) -> None:
            payload = {"type": kind, "sequence_number": len(frames), **fields}
            frames.append(sse(dumps(payload), kind))

        ev("response.created", response=env)
        ev("response.in_progress", response=env)
        for index, item in enumerate(items):
            kind = item["type"]
            iid = item["id"]
            if kind == "reasoning":
                ev("response.output_item.added", output_index=index, item=dict(item, summary=[]))
                for si, summary in enumerate(item["summary"]):
                    text = summary["text"]
                    common = {"item_id": iid, "output_index": index, "summary_index": si}
                    ev(
                        "response.reasoning_summary_part.added",
                        **common,
                        part={"type": "summary_text", "text": ""},
                    )
                    for piece in split_text(text, reply.chunks):
                        ev("response.reasoning_summary_text.delta", **common, delta=piece)
                    ev("response.reasoning_summary_text.done", **common, text=text)
                    ev(
                        "response.reasoning_summary_part.done",
                        **common,
                        part={"type": "summary_text", "text": text},
                    )
            elif kind == "message":
                part = item["content"][0]
                added = dict(item, status="in_progress", content=[])
                ev("response.output_item.added", output_index=index, item=added)
                common = {"item_id": iid, "output_index": index, "content_index": 0}
                ev("response.content_part.added", **common, part=dict(part, text=""))
                for piece in split_text(part["text"], reply.chunks):
                    ev("response.output_text.delta", **common, delta=piece, logprobs=[])
                ev("response.output_text.done", **common, text=part["text"], logprobs=[])
                ev("response.content_part.done", **common, part=part)
            else:
                ev(
                    "response.output_item.added",
                    output_index=index,
                    item=dict(item, status="in_progress", arguments=""),
                )
                common = {"item_id": iid, "output_index": index}
                for frag in split_fragments(item["arguments"], reply.chunks):
                    ev("response.function_call_arguments.delta", **common, delta=frag)
                ev(
                    "response.function_call_arguments.done",
                    **common,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            ev("response.output_item.done", output_index=index, item=item)
        ev("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)
        return frames
