"""Legacy ``/v1/completions`` as a shim over Chat Completions (prompt in, ``text_completion`` out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ..errors import ProxyError
from ..execute import Answer, StreamAnswer
from ..sse import DONE, SSEParser, frame

__all__ = ["completion_request", "completion_response"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_COPIED = (
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "stream",
    "n",
    "seed",
    "user",
    "logit_bias",
    "stream_options",
)


def completion_request(body: bytes) -> bytes:
    try:
        data = _decode(body)
    except msgspec.DecodeError as exc:
        raise ProxyError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "request body must be a JSON object")
    prompt = data.get("prompt")
    if isinstance(prompt, list):
        if not all(isinstance(p, str) for p in prompt):
            raise ProxyError(400, "prompt: token-id prompts are not supported; send text")
        prompt = "\n".join(prompt)
    if prompt is not None and not isinstance(prompt, str):
        raise ProxyError(400, "prompt: expected a string or a list of strings")
    chat: dict[str, Any] = {k: data[k] for k in _COPIED if k in data}
    content = prompt or "Complete this:"
    if isinstance(data.get("suffix"), str) and data["suffix"]:
        content += "\n" + data["suffix"]
    chat["messages"] = [{"role": "user", "content": content}]
    return _encode(chat)


def _choice(choice: dict[str, Any], text: str | None) -> dict[str, Any]:
    return {
        "index": choice.get("index", 0),
        "text": text or "",
        "logprobs": choice.get("logprobs"),
        "finish_reason": choice.get("finish_reason"),
    }


def _convert(obj: dict[str, Any], stream: bool) -> dict[str, Any] | None:
    choices = []
    for ch in obj.get("choices") or []:
        part = ch.get("delta" if stream else "message") or {}
        text = part.get("content")
        if stream and not text and not ch.get("finish_reason"):
            continue
        choices.append(_choice(ch, text))
    if stream and not choices and not obj.get("usage"):
        return None
    out: dict[str, Any] = {
        "id": obj.get("id", ""),
        "object": "text_completion",
        "created": obj.get("created", 0),
        "model": obj.get("model", ""),
        "choices": choices,
    }
    if obj.get("usage"):
        out["usage"] = obj["usage"]
    return out


async def _stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    parser = SSEParser()
    async for raw in chunks:
        out = b""
        for ev in parser.feed(raw):
            if ev.data == DONE:
                out += frame(DONE)
                continue
            obj = _decode(ev.data)
            if isinstance(obj, dict) and "error" in obj:
                out += frame(ev.data)
                continue
            converted = _convert(obj, True) if isinstance(obj, dict) else None
            if converted is not None:
                out += frame(_encode(converted))
        if out:
            yield out


def completion_response(result: Answer | StreamAnswer) -> Answer | StreamAnswer:
    if isinstance(result, StreamAnswer):
        return StreamAnswer(_stream(result.chunks), result.headers, result.media_type)
    obj = _decode(result.body)
    converted = _convert(obj, False) if isinstance(obj, dict) else None
    return Answer(result.status, _encode(converted) if converted is not None else result.body, result.headers)
