"""Gemini ``countTokens``: request bodies (from the IR or from a generate body) and the count answers.

The endpoint accepts either ``{"contents": [...]}`` or ``{"generateContentRequest": {"model", "contents",
"systemInstruction", "tools", ...}}``; only the latter counts the system prompt and tools, so richer bodies are
wrapped. Sampling, safety and generation settings are rejected there and left out.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ... import ir
from ..base import CodecError
from .request import _encode_contents, _encode_tools
from .wire import Content, Part, _count_decoder, _encode

__all__ = [
    "count_tokens_request",
    "count_tokens_request_dict",
    "decode_count_tokens_response",
    "encode_count_tokens_response",
    "shape_count_tokens_request",
]

#: What a ``generateContentRequest`` keeps for counting: the parts that cost tokens.
_COUNT_KEEP: Final = ("contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config")


def count_tokens_request_dict(req: ir.Request) -> dict[str, Any]:
    """``countTokens`` body built from the IR: only fields the endpoint accepts, wrapped so system and tools count."""
    inner: dict[str, Any] = {"model": f"models/{req.model}"}
    system_extra: list[Part] = []
    inner["contents"] = _encode_contents(req, system_extra)
    system = [Part(text=p.text) for p in req.system] + system_extra
    if system:
        inner["systemInstruction"] = Content(role="user", parts=system)
    tools = _encode_tools(req, {})
    if tools:
        inner["tools"] = tools
    return inner


def encode_count_tokens_response(total: int) -> bytes:
    """Client-facing count shape for Gemini and Gemini-CLI clients (the CLI one is not wrapped in ``response``)."""
    return _encode({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]})


def decode_count_tokens_response(body: bytes) -> int:
    """``totalTokens`` of a countTokens answer; :class:`CodecError` when it has none."""
    try:
        return _count_decoder.decode(body).total_tokens
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(f"invalid countTokens response: {exc}") from None


def shape_count_tokens_request(data: dict[str, Any], model: str) -> bool:
    """Turn a generate body (a dict, changed in place) into ``{"generateContentRequest": {...}}`` for
    ``model``; a bare ``{"contents"}`` body and bodies already wrapped stay as sent. ``True`` when changed."""
    wrapped = next((k for k in ("generateContentRequest", "generate_content_request") if k in data), None)
    if wrapped is not None:
        inner = data[wrapped]
        if isinstance(inner, dict) and not inner.get("model"):
            inner["model"] = f"models/{model}"
            return True
        return False
    if set(data) <= {"contents"}:
        return False
    inner = {"model": f"models/{model}"}
    for key in _COUNT_KEEP:
        if key in data:
            inner[key] = data[key]
    data.clear()
    data["generateContentRequest"] = inner
    return True


def count_tokens_request(body: bytes, model: str) -> bytes:
    """:func:`shape_count_tokens_request` on a JSON body; a body that is not a JSON object goes as sent (the
    upstream reports it better than we can)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    if not isinstance(data, dict) or not shape_count_tokens_request(data, model):
        return body
    return _encode(data)
