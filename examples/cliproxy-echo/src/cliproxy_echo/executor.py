"""An executor that answers locally: the last user message, echoed back as OpenAI Chat Completions JSON/SSE.

It speaks ``wire_format = "openai"``, so OpenAI clients hit the identity fast path and other clients are
translated by core's codecs. A network provider would subclass ``cliproxy.upstream.HttpExecutor`` instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError
from cliproxy.protocols import UpstreamCall, UpstreamResponse
from cliproxy.sse import DONE, SSEEvent

__all__ = ["EchoExecutor", "last_user_text"]

_encode = msgspec.json.encode


def last_user_text(body: bytes) -> str:
    """Text of the last ``user`` message (string content or a list of text parts)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise UpstreamError(400, "request body is not valid JSON") from None
    messages = data.get("messages") if isinstance(data, dict) else None
    for msg in reversed(messages if isinstance(messages, list) else []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _include_usage(body: bytes) -> bool:
    data = msgspec.json.decode(body)
    opts = data.get("stream_options") if isinstance(data, dict) else None
    return isinstance(opts, dict) and opts.get("include_usage") is True


class EchoExecutor:
    name = "echo"
    wire_format = "openai"

    def _reply(self, call: UpstreamCall, cred: Credential) -> tuple[str, str, int]:
        if call.action != "generate":
            raise UpstreamError(400, f"the echo provider does not support {call.action}")
        text = str(cred.attributes.get("prefix", "")) + last_user_text(call.body)
        return f"chatcmpl-echo-{uuid.uuid4().hex[:12]}", text, int(time.time())

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        rid, text, created = self._reply(call, cred)
        words = len(text.split())
        body = {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": words, "completion_tokens": words, "total_tokens": 2 * words},
        }
        return UpstreamResponse(200, _encode(body), {"content-type": "application/json"})

    async def stream(self, call: UpstreamCall, cred: Credential) -> AsyncIterator[SSEEvent]:
        """One chunk per word, so clients see a real multi-event stream; ends with ``[DONE]`` like OpenAI."""
        rid, text, created = self._reply(call, cred)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> SSEEvent:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return SSEEvent(
                _encode(
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": call.model,
                        "choices": [choice],
                    }
                )
            )

        yield chunk({"role": "assistant", "content": ""})
        pieces = text.split(" ")
        for i, piece in enumerate(pieces):
            yield chunk({"content": piece if i == 0 else " " + piece})
        yield chunk({}, "stop")
        if _include_usage(call.body):
            words = len(text.split())
            usage = {"prompt_tokens": words, "completion_tokens": words, "total_tokens": 2 * words}
            yield SSEEvent(
                _encode(
                    {
                        "id": rid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": call.model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        yield SSEEvent(DONE)
