"""Gemini ``GenerateContentResponse`` ↔ IR."""

from __future__ import annotations

import secrets

import msgspec

from ... import ir
from ..base import CodecError
from .mapping import (
    _TO_NATIVE,
    _args_object,
    _args_text,
    _finish_reason,
    _format_time,
    _mint_id,
    _parse_time,
    _random_id,
    _usage_from_ir,
    _usage_to_ir,
)
from .request import _decode_media, _media_part
from .wire import (
    _DIALECT,
    FunctionCall,
    GenerateContentResponse,
    OutCandidate,
    OutContent,
    OutResponse,
    Part,
    _encode,
    _ext,
    _response_decoder,
)

__all__ = ["decode_response", "encode_response", "response_struct"]


def _response_parts(
    parts: list[Part], resp_id: str | None, names: dict[str, str], tool_base: int = 0
) -> tuple[list[ir.Part], bool]:
    out: list[ir.Part] = []
    saw_tool = False
    k = tool_base
    for part in parts:
        sig = part.thought_signature
        fc = part.function_call
        if fc is not None:
            saw_tool = True
            call_id = fc.id or (_mint_id(resp_id, k, fc.name) if resp_id else _random_id())
            k += 1
            out.append(
                ir.ToolCallPart(
                    id=call_id,
                    name=names.get(fc.name, fc.name),
                    arguments=_args_text(fc.args),
                    signature=sig,
                )
            )
        elif part.thought:
            prev = out[-1] if out else None
            if isinstance(prev, ir.ReasoningPart) and prev.signature is None:
                prev.text += part.text or ""
                prev.signature = sig
            else:
                out.append(ir.ReasoningPart(text=part.text or "", signature=sig, origin=_DIALECT))
        elif part.text:
            prev = out[-1] if out else None
            if isinstance(prev, ir.TextPart) and not prev.ext and not sig:
                prev.text += part.text
            else:
                out.append(ir.TextPart(text=part.text, ext={_DIALECT: {"thoughtSignature": sig}} if sig else {}))
        elif sig:
            out.append(ir.ReasoningPart(text="", signature=sig, origin=_DIALECT))
        else:
            media = _decode_media(part)
            if media is not None:
                out.append(media)
    return out, saw_tool


def _decode_response_struct(g: GenerateContentResponse, names: dict[str, str]) -> ir.Response:
    if g.error is not None:
        raise CodecError(f"upstream error {g.error.code}: {g.error.message}")
    cand = g.candidates[0] if g.candidates else None
    parts: list[ir.Part] = []
    saw_tool = False
    if cand is not None and cand.content is not None:
        parts, saw_tool = _response_parts(cand.content.parts, g.response_id, names)
    native = cand.finish_reason if cand is not None else None
    if native is None and g.prompt_feedback is not None and g.prompt_feedback.block_reason:
        native = "SAFETY"
    resp = ir.Response(
        id=g.response_id or secrets.token_hex(12),
        model=g.model_version or "",
        created=_parse_time(g.create_time),
        parts=parts,
        finish_reason=_finish_reason(native, saw_tool),
        usage=_usage_to_ir(g.usage_metadata) if g.usage_metadata is not None else None,
    )
    if native:
        resp.ext = {_DIALECT: {"finishReason": native}}
    return resp


def _encode_response_parts(parts: list[ir.Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            out.append(Part(text=part.text, thought_signature=_ext(part).get("thoughtSignature")))
        elif isinstance(part, ir.ReasoningPart):
            sig = part.signature if part.origin == _DIALECT else None
            if part.text or sig:
                out.append(Part(text=part.text, thought=True if part.text else None, thought_signature=sig))
        elif isinstance(part, ir.ToolCallPart):
            out.append(
                Part(
                    function_call=FunctionCall(name=part.name, args=_args_object(part.arguments)),
                    thought_signature=part.signature,
                )
            )
        elif isinstance(part, ir.ImagePart):
            mp = _media_part(part)
            if mp is not None:
                out.append(mp)
    return out


def response_struct(resp: ir.Response) -> OutResponse:
    native = _ext(resp).get("finishReason") or _TO_NATIVE.get(resp.finish_reason, "STOP")
    return OutResponse(
        candidates=[
            OutCandidate(
                content=OutContent(role="model", parts=_encode_response_parts(resp.parts)),
                index=0,
                finish_reason=native,
            )
        ],
        usage_metadata=_usage_from_ir(resp.usage) if resp.usage is not None else None,
        model_version=resp.model or None,
        response_id=resp.id or None,
        create_time=_format_time(resp.created),
    )


def decode_response(body: bytes, names: dict[str, str]) -> ir.Response:
    """``names`` maps sanitised function names back to the client's (see ``mapping.name_map``)."""
    try:
        g = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(f"invalid Gemini response: {exc}") from None
    return _decode_response_struct(g, names)


def encode_response(resp: ir.Response) -> bytes:
    return _encode(response_struct(resp))
