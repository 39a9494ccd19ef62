"""OpenAI Responses ``response`` objects ↔ IR (also the shape of the lifecycle events' ``response``)."""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

import msgspec

from ... import ir
from ..base import CodecError
from .names import reverse_names
from .request import encode_request_dict
from .wire import (
    _DIALECT,
    FunctionCallItem,
    InputTokensDetails,
    MessageItem,
    OutputItem,
    OutputText,
    OutputTokensDetails,
    ReasoningItem,
    ResponseError,
    ResponseObject,
    ResponseUsage,
    SummaryText,
    _encode,
    _InResponse,
    _InUsage,
    _response_decoder,
    _wrapped_decoder,
)

__all__ = ["decode_response", "encode_response"]


# --------------------------------------------------------------------------------------------- response


_INCOMPLETE: Final[dict[str, ir.FinishReason]] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


def _usage_to_ir(u: _InUsage) -> ir.Usage:
    return ir.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cached_tokens=u.input_tokens_details.cached_tokens if u.input_tokens_details else 0,
        reasoning_tokens=u.output_tokens_details.reasoning_tokens if u.output_tokens_details else 0,
    )


def _usage_from_ir(u: ir.Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=u.input_tokens,
        input_tokens_details=InputTokensDetails(
            cached_tokens=u.cached_tokens, cache_write_tokens=u.cache_creation_tokens
        ),
        output_tokens=u.output_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=u.reasoning_tokens),
        total_tokens=u.input_tokens + u.output_tokens,
    )


def _finish(status: str | None, details: dict[str, Any] | None, saw_tool: bool) -> ir.FinishReason:
    if status == "failed":
        return "error"
    if status == "incomplete":
        reason = (details or {}).get("reason")
        return _INCOMPLETE.get(reason, "length") if isinstance(reason, str) else "length"
    return "tool_calls" if saw_tool else "stop"


def _decode_response_obj(r: _InResponse, names: dict[str, str]) -> ir.Response:
    parts: list[ir.Part] = []
    saw_tool = False
    for item in r.output:
        if item.type == "reasoning":
            text = "\n\n".join(s.text for s in item.summary or () if s.text)
            if not text and item.content:
                text = "".join(c.text for c in item.content)
            parts.append(ir.ReasoningPart(text=text, encrypted=item.encrypted_content, origin=_DIALECT))
        elif item.type == "message":
            text = "".join(c.text or c.refusal for c in item.content or ())
            if text:
                parts.append(ir.TextPart(text=text))
        elif item.type == "function_call":
            saw_tool = True
            name = item.name or ""
            parts.append(
                ir.ToolCallPart(
                    id=item.call_id or item.id or "",
                    name=names.get(name, name),
                    arguments=item.arguments or "{}",
                )
            )
    return ir.Response(
        id=r.id,
        model=r.model,
        created=int(r.created_at),
        parts=parts,
        finish_reason=_finish(r.status, r.incomplete_details, saw_tool),
        usage=_usage_to_ir(r.usage) if r.usage is not None else None,
    )


def _response_id(raw: str) -> str:
    return raw if raw.startswith("resp_") else "resp_" + (raw or secrets.token_hex(12))


def _item_base(resp_id: str) -> str:
    return resp_id.removeprefix("resp_")


def _echo(req: ir.Request | None) -> dict[str, Any]:
    """Request fields OpenAI repeats in every ``response`` object (``instructions``, ``tools``, ``reasoning`` ...),
    taken from the client's request so SDKs that read them back find what they sent."""
    if req is None:
        return {}
    body = encode_request_dict(req)
    keys = (
        "instructions",
        "max_output_tokens",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "reasoning",
        "store",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_p",
        "truncation",
        "user",
        "metadata",
    )
    return {k: body[k] for k in keys if k in body}


def _status_for(reason: ir.FinishReason) -> tuple[str, dict[str, Any] | None]:
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    if reason == "error":
        return "failed", None
    return "completed", None


def _response_object(
    *,
    resp_id: str,
    model: str,
    created: int,
    status: str,
    echo: dict[str, Any],
    output: list[OutputItem] | None = None,
    usage: ir.Usage | None = None,
    incomplete: dict[str, Any] | None = None,
    error: ResponseError | None = None,
) -> ResponseObject:
    obj = ResponseObject(
        id=resp_id,
        created_at=created,
        status=status,
        model=model,
        output=output or [],
        usage=_usage_from_ir(usage) if usage is not None else None,
        incomplete_details=incomplete,
        error=error,
    )
    for k, v in echo.items():
        setattr(obj, k, v)
    if status == "failed" and error is None:
        obj.error = ResponseError(code="server_error", message="the model failed to complete the response")
    return obj


def _output_items(resp: ir.Response) -> list[OutputItem]:
    base = _item_base(_response_id(resp.id))
    items: list[OutputItem] = []
    texts: list[str] = []
    n = 0
    for part in resp.parts:
        if isinstance(part, ir.ReasoningPart):
            encrypted = part.encrypted if part.origin == _DIALECT else None
            summary = [SummaryText(text=part.text)] if part.text else []
            if summary or encrypted:
                items.append(ReasoningItem(id=f"rs_{base}_{n}", summary=summary, encrypted_content=encrypted))
                n += 1
        elif isinstance(part, ir.TextPart):
            texts.append(part.text)
    if texts:
        text = "".join(texts)
        items.append(
            MessageItem(
                id=f"msg_{base}_{n}",
                status="completed",
                role="assistant",
                content=[OutputText(annotations=[], logprobs=[], text=text)],
            )
        )
    for part in resp.parts:
        if isinstance(part, ir.ToolCallPart):
            items.append(
                FunctionCallItem(
                    id="fc_" + part.id,
                    status="completed",
                    arguments=part.arguments or "{}",
                    call_id=part.id,
                    name=part.name,
                )
            )
    return items


def decode_response(body: bytes, req: ir.Request | None = None) -> ir.Response:
    try:
        wrapped = _wrapped_decoder.decode(body)
        r = wrapped.response if wrapped.type and wrapped.response is not None else _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(f"invalid Responses body: {exc}") from None
    return _decode_response_obj(r, reverse_names(req))


def encode_response(resp: ir.Response, req: ir.Request | None = None) -> bytes:
    status, incomplete = _status_for(resp.finish_reason)
    obj = _response_object(
        resp_id=_response_id(resp.id),
        model=resp.model,
        created=resp.created or int(time.time()),
        status=status,
        echo=_echo(req),
        output=_output_items(resp),
        usage=resp.usage,
        incomplete=incomplete,
    )
    return _encode(obj)
