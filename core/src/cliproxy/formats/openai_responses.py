"""OpenAI Responses API codec (``/v1/responses``), also the dialect of the Codex (ChatGPT backend) upstream.

Responses clients such as Codex CLI are strict about the stream: every item needs its full
added → delta → done lifecycle, ``sequence_number`` must increase, and a stream that does not end with exactly
one ``response.completed`` (or ``response.incomplete``/``response.failed``) is reported as "stream
disconnected before completion" (spec §6.2, §7.1 item 4). The encoder therefore closes open items itself
and finalises on ``close()``.

Codex limits function names to 64 characters, so long names are shortened deterministically on encode and
restored from the request's tool list on decode (spec §4.0.9). Choosing Codex's official ``instructions`` and
forcing ``store``/``stream``/``include`` are executor concerns and stay out of this codec.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from .. import ir
from ..errors import kind_for_status
from ..sse import SSEEvent, frame
from ..thinking import resolve_effort
from .base import CodecError

__all__ = [
    "CODEC",
    "OpenAIResponsesCodec",
    "ResponsesStreamDecoder",
    "ResponsesStreamEncoder",
    "restore_tool_name",
    "shorten_tool_names",
]

_DIALECT: Final = "openai-response"
_MAX_NAME: Final = 64


# ----------------------------------------------------------------------------------------- request wire types


class ContentPart(msgspec.Struct, omit_defaults=True):
    type: str = "input_text"
    text: str | None = None
    image_url: str | dict[str, Any] | None = None
    detail: str | None = None
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class SummaryPart(msgspec.Struct, omit_defaults=True):
    type: str = "summary_text"
    text: str = ""


class InputItem(msgspec.Struct, omit_defaults=True):
    """Every input item shape in one permissive Struct: ``type`` may be missing for role-only messages."""

    type: str | None = None
    role: str | None = None
    content: str | list[ContentPart] | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[ContentPart] | None = None
    summary: list[SummaryPart] | None = None
    encrypted_content: str | None = None


class ReasoningParam(msgspec.Struct, omit_defaults=True):
    effort: str | None = None
    summary: str | None = None


class TextParam(msgspec.Struct, omit_defaults=True):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct, omit_defaults=True):
    model: str = ""
    instructions: str | None = None
    input: str | list[InputItem] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextParam | None = None
    stream: bool | None = None
    user: str | None = None
    # Carried in ext only: no other dialect has them.
    include: list[str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    truncation: str | None = None
    safety_identifier: str | None = None
    max_tool_calls: int | None = None
    top_logprobs: int | None = None
    background: bool | None = None


_EXT_FIELDS: Final = (
    "include",
    "store",
    "previous_response_id",
    "prompt_cache_key",
    "metadata",
    "service_tier",
    "truncation",
    "safety_identifier",
    "max_tool_calls",
    "top_logprobs",
    "background",
)


# ---------------------------------------------------------------------------------------- response wire types


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    annotations: list[Any]
    logprobs: list[Any]
    text: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type"):
    text: str


class MessageItem(msgspec.Struct, tag="message", tag_field="type"):
    id: str
    status: str
    role: str
    content: list[OutputText]


class ReasoningItem(msgspec.Struct, tag="reasoning", tag_field="type", omit_defaults=True):
    id: str
    summary: list[SummaryText]
    encrypted_content: str | None = None
    status: str | None = None


class FunctionCallItem(msgspec.Struct, tag="function_call", tag_field="type"):
    id: str
    status: str
    arguments: str
    call_id: str
    name: str


OutputItem = MessageItem | ReasoningItem | FunctionCallItem


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    #: Newer API field (prompt-cache writes); filled from Claude-style cache creation counts.
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class ResponseError(msgspec.Struct):
    code: str
    message: str


class ResponseObject(msgspec.Struct, kw_only=True):
    """The ``response`` object; nullable fields are always written, as OpenAI does."""

    id: str
    object: str = "response"
    created_at: int
    status: str
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem] = []
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    prompt_cache_key: str | None = None
    reasoning: dict[str, Any] | None = None
    store: bool = False
    temperature: float | None = None
    text: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = []
    top_p: float | None = None
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, Any] = {}


# Decoding side: permissive views of what upstreams send.


class _OutContent(msgspec.Struct):
    type: str = ""
    text: str = ""
    refusal: str = ""


class _OutItem(msgspec.Struct):
    type: str = ""
    id: str | None = None
    role: str | None = None
    content: list[_OutContent] | None = None
    summary: list[SummaryPart] | None = None
    encrypted_content: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class _InDetails(msgspec.Struct):
    cached_tokens: int = 0


class _OutDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class _InUsage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _InDetails | None = None
    output_tokens_details: _OutDetails | None = None


class _InError(msgspec.Struct):
    code: str | None = None
    message: str = ""


class _InResponse(msgspec.Struct):
    id: str = ""
    model: str = ""
    created_at: float = 0
    status: str | None = None
    output: list[_OutItem] = []
    usage: _InUsage | None = None
    incomplete_details: dict[str, Any] | None = None
    error: _InError | None = None


class _InEvent(msgspec.Struct):
    type: str = ""
    response: _InResponse | None = None
    item: _OutItem | None = None
    output_index: int | None = None
    item_id: str | None = None
    delta: str = ""
    summary_index: int = 0
    arguments: str | None = None
    code: str | None = None
    message: str | None = None


class _Wrapped(msgspec.Struct):
    """Non-stream Codex bodies may be the ``response.completed`` event itself (spec §3.2)."""

    type: str | None = None
    response: _InResponse | None = None


_encoder: Final = msgspec.json.Encoder()
_encode: Final = _encoder.encode
_request_decoder: Final = msgspec.json.Decoder(ResponsesRequest)
_event_decoder: Final = msgspec.json.Decoder(_InEvent)
_response_decoder: Final = msgspec.json.Decoder(_InResponse)
_wrapped_decoder: Final = msgspec.json.Decoder(_Wrapped)


def _ext(obj: Any) -> dict[str, Any]:
    value = obj.ext.get(_DIALECT) if obj.ext else None
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------------- tool names


def _short(name: str) -> str:
    if len(name) <= _MAX_NAME:
        return name
    if name.startswith("mcp__"):
        tail = name[name.rfind("__") + 2 :]
        return ("mcp__" + tail)[:_MAX_NAME]
    return name[:_MAX_NAME]


def shorten_tool_names(names: Iterable[str]) -> dict[str, str]:
    """Original → upstream name for every name longer than Codex's 64-character limit (spec §4.0.9).

    ``mcp__server__tool`` keeps ``mcp__`` + the part after the last ``__``; collisions get ``_1``, ``_2`` …
    (``~`` suffixes are rejected by OpenAI, 1ba057112). Deterministic for a given tool list.
    """
    ordered = list(dict.fromkeys(names))
    taken = {n for n in ordered if len(n) <= _MAX_NAME}
    out: dict[str, str] = {}
    for name in ordered:
        if len(name) <= _MAX_NAME:
            continue
        cand = _short(name)
        i = 1
        while cand in taken:
            suffix = f"_{i}"
            cand = _short(name)[: _MAX_NAME - len(suffix)] + suffix
            i += 1
        taken.add(cand)
        out[name] = cand
    return out


def restore_tool_name(name: str, tools: Iterable[ir.Tool]) -> str:
    """The client's original name for a (possibly shortened) function name in an upstream answer."""
    reverse = {v: k for k, v in shorten_tool_names(t.name for t in tools).items()}
    return reverse.get(name, name)


def _reverse_names(req: ir.Request | None) -> dict[str, str]:
    if req is None:
        return {}
    return {v: k for k, v in shorten_tool_names(t.name for t in req.tools).items()}


# ----------------------------------------------------------------------------------------- request: wire → IR


def _parse_data_url(url: str) -> tuple[str, str] | None:
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    mime, _, enc = head.partition(";")
    if not sep or enc != "base64":
        return None
    return mime or "application/octet-stream", data


def _image_part(url: str, detail: str | None) -> ir.ImagePart:
    parsed = _parse_data_url(url)
    if parsed is not None:
        return ir.ImagePart(media_type=parsed[0], data=parsed[1], detail=detail)
    return ir.ImagePart(url=url, detail=detail, media_type="image/*")


def _decode_content(content: str | list[ContentPart] | None) -> list[ir.TextPart | ir.ImagePart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextPart(text=content)]
    out: list[ir.TextPart | ir.ImagePart] = []
    for c in content:
        if c.type in ("input_text", "output_text", "text", "summary_text", "reasoning_text", "refusal"):
            out.append(ir.TextPart(text=c.text or ""))
        elif c.type == "input_image":
            url = c.image_url.get("url") if isinstance(c.image_url, dict) else c.image_url
            if isinstance(url, str) and url:
                out.append(_image_part(url, c.detail))
        elif c.type == "input_file":
            if c.file_data:
                parsed = _parse_data_url(c.file_data)
                mime, data = parsed if parsed else ("application/pdf", c.file_data)
                ext = {_DIALECT: {"filename": c.filename}} if c.filename else {}
                out.append(ir.ImagePart(media_type=mime, data=data, ext=ext))
            elif c.file_url:
                out.append(ir.ImagePart(media_type="application/pdf", url=c.file_url))
    return out


def _output_text(output: str | list[ContentPart] | None) -> list[ir.TextPart | ir.ImagePart]:
    if output is None:
        return [ir.TextPart(text="")]
    return _decode_content(output)


def _decode_input(items: list[InputItem], req: ir.Request) -> None:
    names = {it.call_id: it.name or "" for it in items if it.type == "function_call" and it.call_id}
    leading = True
    messages = req.messages
    for it in items:
        kind = it.type or ("message" if it.role else "")
        if kind == "message":
            role = (it.role or "user").lower()
            parts = _decode_content(it.content)
            if role in ("system", "developer"):
                texts = [
                    ir.TextPart(text=p.text, ext={_DIALECT: {"role": role}})
                    for p in parts
                    if isinstance(p, ir.TextPart)
                ]
                if leading:
                    req.system.extend(texts)
                else:
                    messages.append(ir.Message(role="system", parts=list(texts), ext={_DIALECT: {"role": role}}))
                continue
            leading = False
            ir_role = "assistant" if role == "assistant" else "user"
            if not parts:
                continue
            if ir_role == "assistant":
                _assistant(messages).parts.extend(parts)
            else:
                messages.append(ir.Message(role="user", parts=list(parts)))
        elif kind == "function_call":
            leading = False
            ext = {_DIALECT: {"id": it.id}} if it.id else {}
            _assistant(messages).parts.append(
                ir.ToolCallPart(
                    id=it.call_id or it.id or "", name=it.name or "", arguments=it.arguments or "{}", ext=ext
                )
            )
        elif kind == "function_call_output":
            leading = False
            call_id = it.call_id or ""
            content = _output_text(it.output)
            if call_id not in names:
                # Orphan output (state lived behind previous_response_id): a plain user
                # message instead of a tool
                # result no upstream could match (spec §7.4 item 29).
                text = "\n".join(p.text for p in content if isinstance(p, ir.TextPart))
                messages.append(
                    ir.Message(role="user", parts=[ir.TextPart(text=f"Output of tool call {call_id}:\n{text}")])
                )
                continue
            result = ir.ToolResultPart(call_id=call_id, name=names[call_id] or None, content=content)
            last = messages[-1] if messages else None
            if last is not None and last.role == "tool":
                last.parts.append(result)
            else:
                messages.append(ir.Message(role="tool", parts=[result]))
        elif kind == "reasoning":
            leading = False
            text = "\n\n".join(s.text for s in it.summary or () if s.text)
            ext = {_DIALECT: {"id": it.id}} if it.id else {}
            _assistant(messages).parts.append(
                ir.ReasoningPart(text=text, encrypted=it.encrypted_content, origin=_DIALECT, ext=ext)
            )
        # Built-in tool call items (web_search_call, local_shell_call ...) have no IR equivalent: dropped.


def _assistant(messages: list[ir.Message]) -> ir.Message:
    """The assistant turn to append to: consecutive output items form one turn (parallel calls, §7.16)."""
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        return last
    msg = ir.Message(role="assistant", parts=[])
    messages.append(msg)
    return msg


def _decode_tools(r: ResponsesRequest, req: ir.Request, ext: dict[str, Any]) -> None:
    passthrough: list[dict[str, Any]] = []
    for tool in r.tools or ():
        if tool.get("type") != "function":
            passthrough.append(tool)
            continue
        nested = tool.get("function")
        fn: dict[str, Any] = nested if isinstance(nested, dict) else tool  # chat-style nesting
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise CodecError("tools[].name is required for function tools")
        params = fn.get("parameters")
        strict = fn.get("strict")
        desc = fn.get("description")
        req.tools.append(
            ir.Tool(
                name=name,
                description=desc if isinstance(desc, str) else None,
                parameters=params if isinstance(params, dict) else None,
                strict=strict if isinstance(strict, bool) else None,
            )
        )
    if passthrough:
        ext["tools"] = passthrough
    tc = r.tool_choice
    if isinstance(tc, str):
        if tc in ("auto", "none", "required"):
            req.tool_choice = ir.ToolChoice(mode=tc)  # type: ignore[arg-type]
    elif isinstance(tc, dict):
        name = tc.get("name")
        if name is None and isinstance(tc.get("function"), dict):
            name = tc["function"].get("name")
        if tc.get("type") == "function" and isinstance(name, str):
            req.tool_choice = ir.ToolChoice(mode="tool", name=name)
        else:
            ext["tool_choice"] = tc


def _decode_text_format(fmt: dict[str, Any] | None) -> ir.ResponseFormat | None:
    if not fmt:
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("schema")
        strict = fmt.get("strict")
        name = fmt.get("name")
        return ir.ResponseFormat(
            type="json_schema",
            schema=schema if isinstance(schema, dict) else None,
            name=name if isinstance(name, str) else None,
            strict=strict if isinstance(strict, bool) else None,
        )
    if kind == "json_object":
        return ir.ResponseFormat(type="json_object")
    if kind == "text":
        return ir.ResponseFormat(type="text")
    return None


def _decode_request(body: bytes) -> ir.Request:
    try:
        r = _request_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(str(exc)) from None
    ext: dict[str, Any] = {}
    for name in _EXT_FIELDS:
        value = getattr(r, name)
        if value is not None:
            ext[name] = value
    req = ir.Request(
        model=r.model,
        stream=bool(r.stream),
        parallel_tool_calls=r.parallel_tool_calls,
        max_tokens=r.max_output_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        user=r.user,
    )
    if r.instructions:
        req.system.append(ir.TextPart(text=r.instructions))
    if isinstance(r.input, str):
        req.messages.append(ir.Message(role="user", parts=[ir.TextPart(text=r.input)]))
    elif r.input:
        _decode_input(r.input, req)
    _decode_tools(r, req, ext)
    if r.reasoning is not None and (r.reasoning.effort or r.reasoning.summary):
        req.reasoning = ir.ReasoningConfig(effort=r.reasoning.effort, summary=r.reasoning.summary)
    if r.text is not None:
        req.response_format = _decode_text_format(r.text.format)
        if r.text.verbosity:
            ext["verbosity"] = r.text.verbosity
    if ext:
        req.ext = {_DIALECT: ext}
    return req


# ----------------------------------------------------------------------------------------- request: IR → wire


def _data_url(part: ir.ImagePart) -> str | None:
    if part.data is not None:
        return f"data:{part.media_type};base64,{part.data}"
    return part.url


def _content_parts(parts: Iterable[ir.Part], role: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    text_type = "output_text" if role == "assistant" else "input_text"
    for p in parts:
        if isinstance(p, ir.TextPart):
            out.append({"type": text_type, "text": p.text})
        elif isinstance(p, ir.ImagePart) and role != "assistant":
            url = _data_url(p)
            if url is None:
                continue
            if p.media_type.startswith("image/"):
                # ``detail`` is optional for the API but required by its published schema: send the default.
                item: dict[str, Any] = {"type": "input_image", "image_url": url, "detail": p.detail or "auto"}
            elif p.data is not None:
                filename = _ext(p).get("filename") or "file." + p.media_type.rsplit("/", 1)[-1]
                item = {"type": "input_file", "file_data": url, "filename": filename}
            else:
                item = {"type": "input_file", "file_url": url}
            out.append(item)
    return out


def _tool_output(part: ir.ToolResultPart) -> str | list[dict[str, Any]]:
    if any(isinstance(c, ir.ImagePart) for c in part.content):
        return _content_parts(part.content, "user")
    return "\n".join(c.text for c in part.content if isinstance(c, ir.TextPart))


def _encode_input(req: ir.Request, short: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for p in req.system:
        role = _ext(p).get("role")
        if role:
            items.append({"type": "message", "role": role, "content": [{"type": "input_text", "text": p.text}]})
    for msg in req.messages:
        pending: list[ir.Part] = []

        def flush(role: str, pending: list[ir.Part] = pending) -> None:
            content = _content_parts(pending, role)
            if content:
                items.append({"type": "message", "role": role, "content": content})
            pending.clear()

        if msg.role == "system":
            role = _ext(msg).get("role") or "developer"
            content = _content_parts(msg.parts, "user")
            if content:
                items.append({"type": "message", "role": role, "content": content})
            continue
        role = "assistant" if msg.role == "assistant" else "user"
        for part in msg.parts:
            if isinstance(part, (ir.TextPart, ir.ImagePart)):
                pending.append(part)
            elif isinstance(part, ir.ToolCallPart):
                flush(role)
                items.append(
                    {
                        "type": "function_call",
                        "call_id": part.id,
                        "name": short.get(part.name, part.name),
                        "arguments": part.arguments or "{}",
                    }
                )
            elif isinstance(part, ir.ToolResultPart):
                flush(role)
                items.append({"type": "function_call_output", "call_id": part.call_id, "output": _tool_output(part)})
            elif isinstance(part, ir.ReasoningPart):
                flush(role)
                # Only OpenAI's own encrypted reasoning can be replayed; ids are omitted because store=false
                # upstreams (Codex) cannot resolve them.
                if part.origin == _DIALECT and part.encrypted:
                    summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                    items.append({"type": "reasoning", "summary": summary, "encrypted_content": part.encrypted})
        flush(role)
    return items


def _encode_tool(tool: ir.Tool, short: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": short.get(tool.name, tool.name)}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    # OpenAI defaults ``strict`` to true for Responses, which rejects most client schemas: be explicit.
    out["strict"] = bool(tool.strict)
    return out


def _encode_tool_choice(req: ir.Request, short: dict[str, str]) -> str | dict[str, Any] | None:
    original = _ext(req).get("tool_choice")
    if original is not None:
        return original  # type: ignore[no-any-return]
    tc = req.tool_choice
    if tc is None:
        return None
    if tc.mode == "tool" and tc.name:
        return {"type": "function", "name": short.get(tc.name, tc.name)}
    return tc.mode if tc.mode != "tool" else "required"


def _encode_text(req: ir.Request) -> dict[str, Any] | None:
    text: dict[str, Any] = {}
    rf = req.response_format
    if rf is not None:
        if rf.type == "json_schema":
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "name": rf.name or "response",
                "schema": rf.schema or {},
            }
            if rf.strict is not None:
                fmt["strict"] = rf.strict
            text["format"] = fmt
        else:
            text["format"] = {"type": rf.type}
    verbosity = _ext(req).get("verbosity")
    if verbosity:
        text["verbosity"] = verbosity
    return text or None


def _instructions(req: ir.Request) -> str | None:
    texts = [p.text for p in req.system if not _ext(p).get("role")]
    return "\n\n".join(texts) if texts else None


def _encode_reasoning(req: ir.Request) -> dict[str, Any] | None:
    effort = resolve_effort(req.reasoning)
    if effort is None:
        return None
    out: dict[str, Any] = {"effort": effort}
    if req.reasoning is not None and req.reasoning.summary:
        out["summary"] = req.reasoning.summary
    return out


def encode_request_dict(req: ir.Request) -> dict[str, Any]:
    """The Responses body as a dict; also the source of the request fields echoed in ``response`` objects."""
    ext = _ext(req)
    short = shorten_tool_names(t.name for t in req.tools)
    body: dict[str, Any] = {"model": req.model}
    instructions = _instructions(req)
    if instructions is not None:
        body["instructions"] = instructions
    body["input"] = _encode_input(req, short)
    tools = [_encode_tool(t, short) for t in req.tools] + list(ext.get("tools") or ())
    if tools:
        body["tools"] = tools
    tool_choice = _encode_tool_choice(req, short)
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    reasoning = _encode_reasoning(req)
    if reasoning is not None:
        body["reasoning"] = reasoning
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    text = _encode_text(req)
    if text is not None:
        body["text"] = text
    if req.user is not None:
        body["user"] = req.user
    body["stream"] = req.stream
    for name in _EXT_FIELDS:
        if name in ext:
            body[name] = ext[name]
    return body


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
    """Request fields OpenAI repeats in every ``response`` object, from the client's request (§4.B.5)."""
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


def _error_code(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    if status in (400, 413, 422):
        return "invalid_prompt"
    return "server_error"


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


# --------------------------------------------------------------------------------------------- streaming


class ResponsesStreamDecoder:
    """Responses SSE → IR events; ignores non-standard events (``codex.rate_limits`` …, spec §7.1 item 12)."""

    __slots__ = ("_args_seen", "_names", "_started", "_tool_by_output", "_tools")

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self._names = names or {}
        self._started = False
        self._tools = 0
        #: output_index (or item id) → IR tool index.
        self._tool_by_output: dict[object, int] = {}
        self._args_seen: set[int] = set()

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        try:
            ev = _event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        kind = ev.type or event.event or ""
        out: list[ir.Event] = []
        if not self._started and kind.startswith("response."):
            self._started = True
            r = ev.response
            out.append(
                ir.Start(
                    id=r.id if r and r.id else secrets.token_hex(12),
                    model=r.model if r else "",
                    created=int(r.created_at) if r else int(time.time()),
                )
            )
        if kind == "response.output_text.delta":
            if ev.delta:
                out.append(ir.TextDelta(text=ev.delta))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if ev.delta:
                out.append(ir.ReasoningDelta(text=ev.delta))
        elif kind == "response.reasoning_summary_part.added":
            if ev.summary_index > 0:
                out.append(ir.ReasoningDelta(text="\n\n"))
        elif kind == "response.output_item.added":
            item = ev.item
            if item is not None and item.type == "function_call":
                self._start_tool(ev, item, out)
        elif kind == "response.function_call_arguments.delta":
            k = self._tool_index(ev)
            if k is not None and ev.delta:
                self._args_seen.add(k)
                out.append(ir.ToolArgsDelta(index=k, json=ev.delta))
        elif kind == "response.output_item.done":
            self._item_done(ev, out)
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self._terminal(ev, out)
        elif kind == "error":
            status = _status_from_code(ev.code)
            out.append(ir.Error(status=status, message=ev.message or "upstream error", kind=kind_for_status(status)))
        return out

    def _tool_index(self, ev: _InEvent) -> int | None:
        if ev.output_index is not None and ev.output_index in self._tool_by_output:
            return self._tool_by_output[ev.output_index]
        if ev.item_id is not None:
            return self._tool_by_output.get(ev.item_id)
        return None

    def _start_tool(self, ev: _InEvent, item: _OutItem, out: list[ir.Event]) -> int:
        k = self._tools
        self._tools += 1
        if ev.output_index is not None:
            self._tool_by_output[ev.output_index] = k
        if item.id:
            self._tool_by_output[item.id] = k
        name = item.name or ""
        out.append(ir.ToolCallStart(index=k, id=item.call_id or item.id or "", name=self._names.get(name, name)))
        if item.arguments:
            self._args_seen.add(k)
            out.append(ir.ToolArgsDelta(index=k, json=item.arguments))
        return k

    def _item_done(self, ev: _InEvent, out: list[ir.Event]) -> None:
        item = ev.item
        if item is None:
            return
        if item.type == "function_call":
            k = self._tool_index(ev)
            if k is None and item.id is not None:
                k = self._tool_by_output.get(item.id)
            if k is None:  # upstream skipped output_item.added
                k = self._start_tool(ev, item, out)
            elif k not in self._args_seen and item.arguments:
                out.append(ir.ToolArgsDelta(index=k, json=item.arguments))
            self._args_seen.add(k)
            out.append(ir.BlockStop())
        elif item.type == "reasoning":
            if item.encrypted_content:
                out.append(ir.ReasoningDelta(text="", encrypted=item.encrypted_content, origin=_DIALECT))
            out.append(ir.BlockStop())
        elif item.type == "message":
            out.append(ir.BlockStop())

    def _terminal(self, ev: _InEvent, out: list[ir.Event]) -> None:
        r = ev.response
        if r is None:
            out.append(ir.Finish(reason="tool_calls" if self._tools else "stop"))
            return
        if r.status == "failed" or ev.type == "response.failed":
            msg = r.error.message if r.error is not None else "the upstream response failed"
            code = r.error.code if r.error is not None else None
            http = _status_from_code(code)
            out.append(ir.Error(status=http, message=msg, kind=kind_for_status(http)))
            return
        if r.usage is not None:
            out.append(ir.UsageEvent(usage=_usage_to_ir(r.usage)))
        status = "incomplete" if ev.type == "response.incomplete" else r.status
        out.append(ir.Finish(reason=_finish(status, r.incomplete_details, self._tools > 0)))

    def close(self) -> list[ir.Event]:
        return []


def _status_from_code(code: str | None) -> int:
    if code in ("rate_limit_exceeded", "insufficient_quota"):
        return 429
    if code in ("invalid_prompt", "context_length_exceeded", "invalid_request_error"):
        return 400
    return 500


# Stream event payloads: ``type`` first, then the fields OpenAI sends, in its order.


class _LifecycleEvent(msgspec.Struct):
    type: str
    sequence_number: int
    response: ResponseObject


class _ItemEvent(msgspec.Struct):
    type: str
    sequence_number: int
    output_index: int
    item: OutputItem


class _ContentPartEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class _TextDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any]


class _TextDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any]


class _SummaryPartEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class _SummaryDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class _SummaryDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class _ArgsDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class _ArgsDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class ResponsesStreamEncoder:
    """IR events → the Responses event stream of spec §6.2, one item open at a time.

    Items are closed when the block kind changes, on ``BlockStop`` and before the terminal event; the final
    ``response.completed`` (``.incomplete`` for truncation, ``.failed`` for errors) carries every item and
    usage.
    """

    __slots__ = (
        "_created",
        "_done",
        "_echo",
        "_encrypted",
        "_id",
        "_item_id",
        "_model",
        "_open",
        "_out_index",
        "_output",
        "_seq",
        "_started",
        "_summary",
        "_tool",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._echo = _echo(req)
        self._model = req.model
        self._id = ""
        self._created = 0
        self._seq = 0
        self._started = False
        self._done = False
        self._output: list[OutputItem] = []
        #: Kind of the open item: "", "reasoning", "message" or "tool".
        self._open = ""
        self._item_id = ""
        self._out_index = 0
        #: Text of the open reasoning/message item.
        self._summary: list[str] = []
        self._encrypted: str | None = None
        #: Open tool call: (call_id, name, argument fragments).
        self._tool: tuple[str, str, list[str]] | None = None
        self._usage: ir.Usage | None = None

    def _emit(self, kind: str, payload: msgspec.Struct) -> bytes:
        return frame(_encode(payload), kind)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _lifecycle(self, kind: str, status: str, **kw: Any) -> bytes:
        obj = _response_object(
            resp_id=self._id, model=self._model, created=self._created, status=status, echo=self._echo, **kw
        )
        return self._emit(kind, _LifecycleEvent(type=kind, sequence_number=self._next(), response=obj))

    def _start(self, resp_id: str, model: str, created: int) -> bytes:
        self._started = True
        self._id = _response_id(resp_id)
        self._model = self._model or model
        self._created = created or int(time.time())
        return self._lifecycle("response.created", "in_progress") + self._lifecycle(
            "response.in_progress", "in_progress"
        )

    def _ensure_started(self) -> bytes:
        return b"" if self._started else self._start("", "", 0)

    def _open_item(self, kind: str, item: OutputItem, item_id: str) -> bytes:
        self._open = kind
        self._item_id = item_id
        self._out_index = len(self._output)
        return self._emit(
            "response.output_item.added",
            _ItemEvent(
                type="response.output_item.added",
                sequence_number=self._next(),
                output_index=self._out_index,
                item=item,
            ),
        )

    def _close(self) -> bytes:
        kind = self._open
        if not kind:
            return b""
        self._open = ""
        idx, item_id = self._out_index, self._item_id
        if kind == "reasoning":
            text = "".join(self._summary)
            encrypted, self._encrypted = self._encrypted, None
            item = ReasoningItem(
                id=item_id, summary=[SummaryText(text=text)] if text else [], encrypted_content=encrypted
            )
            out = self._emit(
                "response.reasoning_summary_text.done",
                _SummaryDoneEvent(
                    type="response.reasoning_summary_text.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    summary_index=0,
                    text=text,
                ),
            ) + self._emit(
                "response.reasoning_summary_part.done",
                _SummaryPartEvent(
                    type="response.reasoning_summary_part.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    summary_index=0,
                    part=SummaryText(text=text),
                ),
            )
            done_item: OutputItem = item
        elif kind == "message":
            text = "".join(self._summary)
            part = OutputText(annotations=[], logprobs=[], text=text)
            out = self._emit(
                "response.output_text.done",
                _TextDoneEvent(
                    type="response.output_text.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    content_index=0,
                    text=text,
                    logprobs=[],
                ),
            ) + self._emit(
                "response.content_part.done",
                _ContentPartEvent(
                    type="response.content_part.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    content_index=0,
                    part=part,
                ),
            )
            done_item = MessageItem(id=item_id, status="completed", role="assistant", content=[part])
        else:
            assert self._tool is not None
            call_id, name, frags = self._tool
            self._tool = None
            args = "".join(frags) or "{}"
            out = self._emit(
                "response.function_call_arguments.done",
                _ArgsDoneEvent(
                    type="response.function_call_arguments.done",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=idx,
                    name=name,
                    arguments=args,
                ),
            )
            done_item = FunctionCallItem(id=item_id, status="completed", arguments=args, call_id=call_id, name=name)
        self._summary = []
        self._output.append(done_item)
        return out + self._emit(
            "response.output_item.done",
            _ItemEvent(
                type="response.output_item.done",
                sequence_number=self._next(),
                output_index=idx,
                item=done_item,
            ),
        )

    def _reasoning(self, ev: ir.ReasoningDelta) -> bytes:
        out = b""
        if self._open != "reasoning":
            if not ev.text and not (ev.encrypted and ev.origin == _DIALECT):
                return b""  # a foreign signature alone has nothing to show a Responses client
            out = self._close()
            item_id = f"rs_{_item_base(self._id)}_{len(self._output)}"
            out += self._open_item("reasoning", ReasoningItem(id=item_id, summary=[], status="in_progress"), item_id)
            out += self._emit(
                "response.reasoning_summary_part.added",
                _SummaryPartEvent(
                    type="response.reasoning_summary_part.added",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=self._out_index,
                    summary_index=0,
                    part=SummaryText(text=""),
                ),
            )
        if ev.encrypted and ev.origin == _DIALECT:
            self._encrypted = ev.encrypted
        if ev.text:
            self._summary.append(ev.text)
            out += self._emit(
                "response.reasoning_summary_text.delta",
                _SummaryDeltaEvent(
                    type="response.reasoning_summary_text.delta",
                    sequence_number=self._next(),
                    item_id=self._item_id,
                    output_index=self._out_index,
                    summary_index=0,
                    delta=ev.text,
                ),
            )
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != "message":
            if not text:
                return b""
            out = self._close()
            item_id = f"msg_{_item_base(self._id)}_{len(self._output)}"
            out += self._open_item(
                "message",
                MessageItem(id=item_id, status="in_progress", role="assistant", content=[]),
                item_id,
            )
            out += self._emit(
                "response.content_part.added",
                _ContentPartEvent(
                    type="response.content_part.added",
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=self._out_index,
                    content_index=0,
                    part=OutputText(annotations=[], logprobs=[], text=""),
                ),
            )
        if text:
            self._summary.append(text)
            out += self._emit(
                "response.output_text.delta",
                _TextDeltaEvent(
                    type="response.output_text.delta",
                    sequence_number=self._next(),
                    item_id=self._item_id,
                    output_index=self._out_index,
                    content_index=0,
                    delta=text,
                    logprobs=[],
                ),
            )
        return out

    def _tool_start(self, ev: ir.ToolCallStart) -> bytes:
        out = self._close()
        item_id = "fc_" + ev.id
        self._tool = (ev.id, ev.name, [])
        return out + self._open_item(
            "tool",
            FunctionCallItem(id=item_id, status="in_progress", arguments="", call_id=ev.id, name=ev.name),
            item_id,
        )

    def _tool_args(self, ev: ir.ToolArgsDelta) -> bytes:
        if self._open != "tool" or self._tool is None or not ev.json:
            return b""
        self._tool[2].append(ev.json)
        return self._emit(
            "response.function_call_arguments.delta",
            _ArgsDeltaEvent(
                type="response.function_call_arguments.delta",
                sequence_number=self._next(),
                item_id=self._item_id,
                output_index=self._out_index,
                delta=ev.json,
            ),
        )

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        out = self._close()
        if reason == "stop" and any(isinstance(i, FunctionCallItem) for i in self._output):
            reason = "tool_calls"
        status, incomplete = _status_for(reason)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        return out + self._lifecycle(kind, status, output=self._output, usage=self._usage, incomplete=incomplete)

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.TextDelta):
            return self._ensure_started() + self._text(event.text)
        if isinstance(event, ir.ReasoningDelta):
            return self._ensure_started() + self._reasoning(event)
        if isinstance(event, ir.ToolArgsDelta):
            return self._tool_args(event)
        if isinstance(event, ir.ToolCallStart):
            return self._ensure_started() + self._tool_start(event)
        if isinstance(event, ir.BlockStop):
            return self._close()
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event.id, event.model, event.created)
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, ir.Finish):
            return self._ensure_started() + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            err = ResponseError(code=_error_code(event.status), message=event.message)
            return (
                self._ensure_started()
                + self._close()
                + self._lifecycle("response.failed", "failed", output=self._output, usage=self._usage, error=err)
            )
        return b""

    def close(self) -> bytes:
        """A stream must end with exactly one terminal event (spec §7.1 item 4): finalise if nothing did."""
        if self._done:
            return b""
        return self._ensure_started() + self._finish("stop")


# --------------------------------------------------------------------------------------------- codec


class OpenAIResponsesCodec:
    """OpenAI Responses bodies ↔ IR.

    ``decode_response``/``stream_decoder`` optionally take the IR request to restore tool names shortened for
    Codex; ``encode_response`` optionally takes it to echo the request fields into the ``response`` object.
    """

    name = "openai-response"

    def decode_request(self, body: bytes) -> ir.Request:
        return _decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return _encode(encode_request_dict(req))

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        try:
            wrapped = _wrapped_decoder.decode(body)
            r = wrapped.response if wrapped.type and wrapped.response is not None else _response_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"invalid Responses body: {exc}") from None
        return _decode_response_obj(r, _reverse_names(req))

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
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

    def stream_decoder(self, req: ir.Request | None = None) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(_reverse_names(req))

    def stream_encoder(self, req: ir.Request) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(req)


CODEC: Final = OpenAIResponsesCodec()
