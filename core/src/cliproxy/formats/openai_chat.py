"""OpenAI Chat Completions codec (dialect ``openai``): chat clients and OpenAI-compatible upstreams.

Wire types are msgspec Structs decoded/encoded by module-level (de)coders. Structs used for *output* give
every field that must always appear no default (or an ``UNSET`` default), because ``omit_defaults`` would
otherwise drop values such as ``"index": 0``. Things the IR cannot express (``logit_bias``,
``max_completion_tokens`` vs ``max_tokens`` ...) travel in ``ext["openai"]`` so an openai → openai trip
through the IR loses nothing important.

Conventions this codec relies on (shared with the other codecs):

* ``Usage.input_tokens`` includes cached tokens (OpenAI ``prompt_tokens`` semantics).
* Stream decoders emit ``UsageEvent`` *before* ``Finish``; OpenAI upstreams send the usage chunk after the
  finish chunk, so the decoder holds the finish back until the usage chunk or ``[DONE]`` (spec §7.5).
* Tool results decode into ``Message(role="tool")``; encoders accept them in ``user`` messages too.
* Only choice 0 is translated (``n > 1`` has no counterpart in the other dialects).
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .. import ir
from ..errors import kind_for_status
from ..sse import SSEEvent, frame
from ..thinking import resolve_effort
from .base import CodecError, new_id

__all__ = ["CODEC", "ChatStreamDecoder", "ChatStreamEncoder", "OpenAIChatCodec"]

NAME: Final = "openai"
_DONE_FRAME: Final = b"data: [DONE]\n\n"

# --------------------------------------------------------------------------------------------- wire: request


class _ImageURL(Struct, omit_defaults=True):
    url: str
    detail: str | None = None


class _InputAudio(Struct, omit_defaults=True):
    data: str
    format: str | UnsetType = UNSET


class _File(Struct, omit_defaults=True):
    file_data: str | None = None
    filename: str | None = None
    file_id: str | None = None


class _ContentPart(Struct, omit_defaults=True):
    type: str
    text: str | None = None
    #: Some clients send the Responses-style bare string here.
    image_url: _ImageURL | str | None = None
    input_audio: _InputAudio | None = None
    file: _File | None = None
    #: OpenRouter-style prompt caching on text parts; read, never written (OpenAI rejects it).
    cache_control: dict[str, Any] | None = None


class _Function(Struct, omit_defaults=True):
    name: str
    #: Broken clients send an object instead of JSON text; both are accepted.
    arguments: str | dict[str, Any] = ""


class _ToolCall(Struct, omit_defaults=True, kw_only=True):
    id: str | None = None
    type: str | UnsetType = UNSET
    function: _Function


class _Message(Struct, omit_defaults=True):
    role: str
    content: str | list[_ContentPart] | UnsetType | None = UNSET
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class _ToolFunction(Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(Struct, omit_defaults=True):
    type: str | UnsetType = UNSET
    function: _ToolFunction | None = None


class _NamedFunction(Struct):
    name: str


class _ToolChoiceObject(Struct, omit_defaults=True):
    type: str | UnsetType = UNSET
    function: _NamedFunction | None = None
    #: Responses-API shape ``{"type":"function","name":...}``, accepted for robustness (spec §4.E.2).
    name: str | None = None


class _StreamOptions(Struct, omit_defaults=True):
    include_usage: bool | None = None


class _JSONSchema(Struct, omit_defaults=True):
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class _ResponseFormat(Struct, omit_defaults=True):
    type: str
    json_schema: _JSONSchema | None = None


class _ThinkingConfig(Struct, omit_defaults=True):
    thinking_budget: int | None = None
    thinkingBudget: int | None = None
    include_thoughts: bool | None = None
    includeThoughts: bool | None = None


class _Google(Struct, omit_defaults=True):
    thinking_config: _ThinkingConfig | None = None
    thinkingConfig: _ThinkingConfig | None = None


class _ExtraBody(Struct, omit_defaults=True):
    google: _Google | None = None


class _Thinking(Struct, omit_defaults=True):
    type: str
    budget_tokens: int | None = None


class _Request(Struct, omit_defaults=True):
    model: str
    messages: list[_Message]
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | _ToolChoiceObject | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    response_format: _ResponseFormat | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    # Non-standard thinking switches sent by various clients (read only).
    thinking: _Thinking | None = None
    extra_body: _ExtraBody | None = None
    google: _Google | None = None
    enable_thinking: bool | None = None
    thinking_budget: int | None = None
    # Carried verbatim in ext["openai"] for openai upstreams.
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None


_PASSTHROUGH: Final = (
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "metadata",
    "store",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
)

# ------------------------------------------------------------------------------------ wire: response (in)


class _InPromptDetails(Struct):
    cached_tokens: int | None = None


class _InCompletionDetails(Struct):
    reasoning_tokens: int | None = None


class _InUsage(Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _InPromptDetails | None = None
    completion_tokens_details: _InCompletionDetails | None = None


class _InFunction(Struct):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _InToolCall(Struct):
    index: int | None = None
    id: str | None = None
    function: _InFunction | None = None


class _InMessage(Struct):
    content: str | list[_ContentPart] | None = None
    reasoning_content: str | None = None
    #: OpenRouter / vLLM spelling; other providers put objects here, hence ``Any``.
    reasoning: Any = None
    tool_calls: list[_InToolCall] | None = None


class _InChoice(Struct):
    index: int = 0
    message: _InMessage | None = None
    delta: _InMessage | None = None
    finish_reason: str | None = None


class _InError(Struct):
    message: Any = None
    type: Any = None
    code: Any = None


class _InCompletion(Struct):
    id: str | None = None
    model: str | None = None
    created: int | None = None
    choices: list[_InChoice] | None = None
    usage: _InUsage | None = None
    error: _InError | None = None


# ----------------------------------------------------------------------------------- wire: response (out)


class _OutFunction(Struct, omit_defaults=True):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class _OutToolCall(Struct, omit_defaults=True):
    index: int | UnsetType = UNSET
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: _OutFunction | UnsetType = UNSET


class _OutMessage(Struct, omit_defaults=True):
    role: str
    content: str | None
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[_OutToolCall] | UnsetType = UNSET


class _OutDelta(Struct, omit_defaults=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[_OutToolCall] | UnsetType = UNSET


class _OutPromptDetails(Struct):
    cached_tokens: int


class _OutCompletionDetails(Struct):
    reasoning_tokens: int


class _OutUsage(Struct, omit_defaults=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _OutPromptDetails | UnsetType = UNSET
    completion_tokens_details: _OutCompletionDetails | UnsetType = UNSET


class _OutChoice(Struct):
    index: int
    message: _OutMessage
    finish_reason: str
    logprobs: None = None


class _OutCompletion(Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[_OutChoice]
    usage: _OutUsage | UnsetType = UNSET


class _OutChunkChoice(Struct):
    index: int
    delta: _OutDelta
    finish_reason: str | None


class _OutChunk(Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[_OutChunkChoice]
    usage: _OutUsage | UnsetType = UNSET


class _OutErrorBody(Struct):
    message: str
    type: str
    code: str | int | None


class _OutError(Struct):
    error: _OutErrorBody


_REQ_DEC: Final = msgspec.json.Decoder(_Request)
_RESP_DEC: Final = msgspec.json.Decoder(_InCompletion)
_ENC: Final = msgspec.json.Encoder()

# --------------------------------------------------------------------------------------------- helpers

_EXT_MIME: Final = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "json": "application/json",
}
_AUDIO_FORMATS: Final = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}

_FINISH_IN: Final[dict[str, ir.FinishReason]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_EMPTY_SCHEMA: Final[dict[str, Any]] = {"type": "object", "properties": {}}


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<b64>`` → ``(mime, b64)``; anything else → ``None`` (kept as a URL)."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[:-7].split(";", 1)[0] or "application/octet-stream", data


def _mime_for_filename(name: str | None) -> str:
    if name and "." in name:
        return _EXT_MIME.get(name.rsplit(".", 1)[1].lower(), "application/octet-stream")
    return "application/octet-stream"


def _args_text(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments if arguments.strip() else "{}"
    return _ENC.encode(arguments).decode()


def _usage_in(u: _InUsage) -> ir.Usage:
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None
    return ir.Usage(
        input_tokens=u.prompt_tokens or 0,
        output_tokens=u.completion_tokens or 0,
        cached_tokens=cached or 0,
        reasoning_tokens=reasoning or 0,
    )


def _usage_out(u: ir.Usage) -> _OutUsage:
    return _OutUsage(
        prompt_tokens=u.input_tokens,
        completion_tokens=u.output_tokens,
        total_tokens=u.input_tokens + u.output_tokens,
        prompt_tokens_details=_OutPromptDetails(u.cached_tokens) if u.cached_tokens else UNSET,
        completion_tokens_details=_OutCompletionDetails(u.reasoning_tokens) if u.reasoning_tokens else UNSET,
    )


def _finish_out(reason: ir.FinishReason, saw_tool: bool) -> str:
    # OpenAI has no "error" finish reason; some upstreams say "stop" even after emitting tool calls.
    if reason == "error":
        return "stop"
    if reason == "stop" and saw_tool:
        return "tool_calls"
    return reason


_ERROR_TYPES: Final[dict[str, str]] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
}


def _error_out(err: ir.Error) -> bytes:
    kind = _ERROR_TYPES.get(err.kind, "server_error")
    return _ENC.encode(_OutError(_OutErrorBody(message=err.message, type=kind, code=None)))


# --------------------------------------------------------------------------------------------- request decode


def _content_parts(content: str | list[_ContentPart] | UnsetType | None, where: str) -> list[ir.Part]:
    if content is None or content is UNSET:
        return []
    if isinstance(content, str):
        return [ir.TextPart(content)]
    out: list[ir.Part] = []
    for j, p in enumerate(content):
        kind = p.type
        if kind == "text":
            if p.text is None:
                raise CodecError(f"{where}.content[{j}].text is required")
            out.append(ir.TextPart(p.text, cache_control=p.cache_control))
        elif kind == "image_url":
            if p.image_url is None:
                raise CodecError(f"{where}.content[{j}].image_url is required")
            img = p.image_url if isinstance(p.image_url, _ImageURL) else _ImageURL(p.image_url)
            parsed = parse_data_url(img.url)
            if parsed is not None:
                out.append(ir.ImagePart(media_type=parsed[0], data=parsed[1], detail=img.detail))
            else:
                out.append(ir.ImagePart(url=img.url, detail=img.detail))
        elif kind == "input_audio":
            if p.input_audio is None:
                raise CodecError(f"{where}.content[{j}].input_audio is required")
            fmt = p.input_audio.format.lower() if p.input_audio.format is not UNSET else "wav"
            mime = "audio/mpeg" if fmt == "mp3" else f"audio/{fmt}"
            out.append(ir.ImagePart(media_type=mime, data=p.input_audio.data))
        elif kind == "file":
            f = p.file
            if f is None or not f.file_data:
                continue  # file_id references need the OpenAI Files API: nothing to forward elsewhere
            parsed = parse_data_url(f.file_data)
            if parsed is None:
                parsed = (_mime_for_filename(f.filename), f.file_data)
            ext: dict[str, Any] = {NAME: {"filename": f.filename}} if f.filename else {}
            out.append(ir.ImagePart(media_type=parsed[0], data=parsed[1], ext=ext))
        # "refusal" and unknown part types carry nothing translatable.
    return out


def _text_only(parts: list[ir.Part]) -> list[ir.TextPart]:
    return [p for p in parts if isinstance(p, ir.TextPart)]


def _reasoning_from_request(r: _Request) -> ir.ReasoningConfig | None:
    if r.reasoning_effort is not None:
        return ir.ReasoningConfig(effort=r.reasoning_effort.lower())
    google = r.extra_body.google if r.extra_body is not None and r.extra_body.google is not None else r.google
    if google is not None:
        tc = google.thinking_config or google.thinkingConfig
        if tc is not None:
            budget = tc.thinking_budget if tc.thinking_budget is not None else tc.thinkingBudget
            include = tc.include_thoughts if tc.include_thoughts is not None else tc.includeThoughts
            if include is None and budget is not None:
                include = budget != 0
            if budget is not None or include is not None:
                return ir.ReasoningConfig(budget=budget, include_thoughts=include)
    if r.thinking is not None:
        if r.thinking.type == "disabled":
            return ir.ReasoningConfig(budget=0)
        if r.thinking.type == "enabled":
            return ir.ReasoningConfig(
                budget=r.thinking.budget_tokens, effort=None if r.thinking.budget_tokens else "auto"
            )
    if r.enable_thinking is not None:
        if not r.enable_thinking:
            return ir.ReasoningConfig(budget=0)
        return ir.ReasoningConfig(budget=r.thinking_budget if r.thinking_budget is not None else -1)
    return None


def _decode_request(body: bytes) -> ir.Request:
    try:
        r = _REQ_DEC.decode(body)
    except msgspec.ValidationError as e:
        raise CodecError(f"invalid chat completion request: {e}") from None
    except msgspec.DecodeError as e:
        raise CodecError(f"request body is not valid JSON: {e}") from None

    system: list[ir.TextPart] = []
    messages: list[ir.Message] = []
    call_names: dict[str, str] = {}
    leading = True
    for i, m in enumerate(r.messages):
        where = f"messages[{i}]"
        role = m.role
        if role == "system" or role == "developer":
            texts = _text_only(_content_parts(m.content, where))
            if role == "developer":
                texts = [ir.TextPart(t.text, cache_control=t.cache_control, ext={NAME: {"role": role}}) for t in texts]
            if leading:
                system.extend(texts)
            else:
                messages.append(ir.Message(role="system", parts=list(texts)))
            continue
        leading = False
        if role == "user":
            messages.append(ir.Message(role="user", parts=_content_parts(m.content, where), name=m.name))
        elif role == "assistant":
            parts: list[ir.Part] = []
            if m.reasoning_content:
                parts.append(ir.ReasoningPart(text=m.reasoning_content))
            parts.extend(p for p in _content_parts(m.content, where) if isinstance(p, ir.TextPart))
            for j, tc in enumerate(m.tool_calls or ()):
                call_id = tc.id or new_id("call_")
                if not tc.function.name:
                    raise CodecError(f"{where}.tool_calls[{j}].function.name is required")
                call_names[call_id] = tc.function.name
                parts.append(
                    ir.ToolCallPart(id=call_id, name=tc.function.name, arguments=_args_text(tc.function.arguments))
                )
            messages.append(ir.Message(role="assistant", parts=parts, name=m.name))
        elif role == "tool":
            if not m.tool_call_id:
                raise CodecError(f"{where}.tool_call_id is required for role 'tool'")
            content = [p for p in _content_parts(m.content, where) if isinstance(p, ir.TextPart | ir.ImagePart)]
            result = ir.ToolResultPart(call_id=m.tool_call_id, name=call_names.get(m.tool_call_id), content=content)
            messages.append(ir.Message(role="tool", parts=[result]))
        elif role == "function":
            continue  # legacy function results have no call id to pair with (dropped, as the reference)
        else:
            raise CodecError(f"{where}.role: unsupported role {role!r}")

    tools: list[ir.Tool] = []
    for i, t in enumerate(r.tools or ()):
        if t.type is not UNSET and t.type != "function":
            continue  # built-in tools have no cross-dialect meaning (spec §4.G.4)
        if t.function is None:
            raise CodecError(f"tools[{i}].function is required")
        f = t.function
        tools.append(ir.Tool(name=f.name, description=f.description, parameters=f.parameters, strict=f.strict))

    tool_choice: ir.ToolChoice | None = None
    tc_raw = r.tool_choice
    if isinstance(tc_raw, str):
        if tc_raw not in ("auto", "none", "required"):
            raise CodecError(f"tool_choice: unsupported value {tc_raw!r}")
        tool_choice = ir.ToolChoice(mode=tc_raw)  # type: ignore[arg-type]
    elif tc_raw is not None:
        name = tc_raw.function.name if tc_raw.function is not None else tc_raw.name
        if not name:
            raise CodecError("tool_choice.function.name is required")
        tool_choice = ir.ToolChoice(mode="tool", name=name)

    response_format: ir.ResponseFormat | None = None
    if r.response_format is not None:
        rf = r.response_format
        if rf.type not in ("text", "json_object", "json_schema"):
            raise CodecError(f"response_format.type: unsupported value {rf.type!r}")
        js = rf.json_schema
        response_format = ir.ResponseFormat(
            type=rf.type,  # type: ignore[arg-type]
            schema=js.schema if js else None,
            name=js.name if js else None,
            strict=js.strict if js else None,
        )

    ext: dict[str, Any] = {}
    for key in _PASSTHROUGH:
        value = getattr(r, key)
        if value is not None:
            ext[key] = value
    if r.max_completion_tokens is not None:
        ext["max_completion_tokens"] = True

    stop = [r.stop] if isinstance(r.stop, str) else list(r.stop or ())
    return ir.Request(
        model=r.model,
        system=system,
        messages=messages,
        stream=bool(r.stream),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=r.parallel_tool_calls,
        max_tokens=r.max_completion_tokens if r.max_completion_tokens is not None else r.max_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        top_k=r.top_k,
        stop=stop,
        seed=r.seed,
        presence_penalty=r.presence_penalty,
        frequency_penalty=r.frequency_penalty,
        candidate_count=r.n,
        reasoning=_reasoning_from_request(r),
        response_format=response_format,
        include_usage=r.stream_options.include_usage if r.stream_options is not None else None,
        user=r.user,
        ext={NAME: ext} if ext else {},
    )


# --------------------------------------------------------------------------------------------- request encode


def _media_part(p: ir.ImagePart, ext_name: str | None = None) -> _ContentPart:
    mt = p.media_type
    if p.data is None:
        return _ContentPart(type="image_url", image_url=_ImageURL(url=p.url or "", detail=p.detail))
    if mt.startswith("image/"):
        return _ContentPart(type="image_url", image_url=_ImageURL(url=f"data:{mt};base64,{p.data}", detail=p.detail))
    if mt in _AUDIO_FORMATS:
        return _ContentPart(type="input_audio", input_audio=_InputAudio(data=p.data, format=_AUDIO_FORMATS[mt]))
    filename = (p.ext.get(NAME) or {}).get("filename") or ext_name or "file." + mt.rsplit("/", 1)[-1]
    return _ContentPart(type="file", file=_File(file_data=f"data:{mt};base64,{p.data}", filename=filename))


def _user_content(parts: list[ir.TextPart | ir.ImagePart]) -> str | list[_ContentPart]:
    if len(parts) == 1 and isinstance(parts[0], ir.TextPart):
        return parts[0].text
    return [_ContentPart(type="text", text=p.text) if isinstance(p, ir.TextPart) else _media_part(p) for p in parts]


def _joined_text(parts: list[ir.TextPart | ir.ImagePart], sep: str = "\n") -> str:
    return sep.join(p.text for p in parts if isinstance(p, ir.TextPart))


def _encode_messages(req: ir.Request) -> list[_Message]:
    out: list[_Message] = []
    system = [p for p in req.system if p.text.strip()]
    if system:
        role = "developer" if all((p.ext.get(NAME) or {}).get("role") == "developer" for p in system) else "system"
        content: str | list[_ContentPart] = (
            system[0].text if len(system) == 1 else [_ContentPart(type="text", text=p.text) for p in system]
        )
        out.append(_Message(role=role, content=content))
    for m in req.messages:
        if m.role == "system":
            text = "\n".join(p.text for p in m.parts if isinstance(p, ir.TextPart) and p.text.strip())
            if text:
                out.append(_Message(role="system", content=text))
        elif m.role == "assistant":
            reasoning = "".join(p.text for p in m.parts if isinstance(p, ir.ReasoningPart))
            text = "".join(p.text for p in m.parts if isinstance(p, ir.TextPart))
            calls = [
                _ToolCall(id=p.id, type="function", function=_Function(name=p.name, arguments=p.arguments or "{}"))
                for p in m.parts
                if isinstance(p, ir.ToolCallPart)
            ]
            if not text.strip() and not calls:
                continue
            out.append(
                _Message(
                    role="assistant",
                    content=text if text.strip() else None,
                    name=m.name,
                    tool_calls=calls or None,
                    reasoning_content=reasoning or None,
                )
            )
        else:
            # Tool results first (OpenAI wants them right after the assistant turn), then the user's own
            # content; images inside tool results cannot ride in a tool message, so they follow as user parts.
            rest: list[ir.TextPart | ir.ImagePart] = []
            for p in m.parts:
                if isinstance(p, ir.ToolResultPart):
                    out.append(_Message(role="tool", tool_call_id=p.call_id, content=_joined_text(p.content)))
                    rest.extend(c for c in p.content if isinstance(c, ir.ImagePart))
                elif isinstance(p, ir.TextPart):
                    if p.text.strip():
                        rest.append(p)
                elif isinstance(p, ir.ImagePart):
                    rest.append(p)
            if rest:
                out.append(_Message(role="user", content=_user_content(rest), name=m.name))
    return out


_EFFORT_OUT: Final = {"none", "auto", "low", "medium", "high", "xhigh"}


def _encode_request(req: ir.Request) -> bytes:
    ext: dict[str, Any] = req.ext.get(NAME) or {}
    tools = [
        _Tool(
            type="function",
            function=_ToolFunction(
                name=t.name,
                description=t.description,
                parameters=t.parameters if t.parameters is not None else _EMPTY_SCHEMA,
                strict=t.strict,
            ),
        )
        for t in req.tools
    ]
    tool_choice: str | _ToolChoiceObject | None = None
    if req.tool_choice is not None and tools:
        if req.tool_choice.mode == "tool":
            tool_choice = _ToolChoiceObject(type="function", function=_NamedFunction(req.tool_choice.name or ""))
        else:
            tool_choice = req.tool_choice.mode
    effort = resolve_effort(req.reasoning)
    if effort is not None and effort not in _EFFORT_OUT:
        # Compatible upstreams do not know "minimal" (spec §4.0.3: minimal → low, unknown → auto).
        effort = "low" if effort == "minimal" else "auto"
    response_format: _ResponseFormat | None = None
    rf = req.response_format
    if rf is not None:
        schema = None
        if rf.type == "json_schema":
            schema = _JSONSchema(name=rf.name or "response", schema=rf.schema or {}, strict=rf.strict)
        response_format = _ResponseFormat(type=rf.type, json_schema=schema)
    use_mct = bool(ext.get("max_completion_tokens"))
    body = _Request(
        model=req.model,
        messages=_encode_messages(req),
        stream=True if req.stream else None,
        stream_options=_StreamOptions(include_usage=True) if req.stream else None,
        tools=tools or None,
        tool_choice=tool_choice,
        parallel_tool_calls=req.parallel_tool_calls if tools else None,
        max_tokens=None if use_mct else req.max_tokens,
        max_completion_tokens=req.max_tokens if use_mct else None,
        temperature=req.temperature,
        top_p=req.top_p,
        # No top_k: api.openai.com rejects it (Gemini CLI always sends topK, so it would break every call).
        stop=(req.stop[0] if len(req.stop) == 1 else list(req.stop)) if req.stop else None,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        n=req.candidate_count,
        response_format=response_format,
        user=req.user,
        reasoning_effort=effort,
        **{k: ext[k] for k in _PASSTHROUGH if k in ext},
    )
    return _ENC.encode(body)


# --------------------------------------------------------------------------------------------- response


def _decode_response(body: bytes) -> ir.Response:
    try:
        r = _RESP_DEC.decode(body)
    except msgspec.DecodeError as e:
        raise CodecError(f"invalid chat completion response: {e}") from None
    if r.error is not None:
        raise CodecError(f"upstream error: {r.error.message}")
    parts: list[ir.Part] = []
    finish: ir.FinishReason = "stop"
    choice = next((c for c in r.choices or () if c.index == 0), None)
    if choice is not None:
        msg = choice.message or choice.delta or _InMessage()
        reasoning = msg.reasoning_content or (msg.reasoning if isinstance(msg.reasoning, str) else None)
        if reasoning:
            parts.append(ir.ReasoningPart(text=reasoning))
        if isinstance(msg.content, str):
            if msg.content:
                parts.append(ir.TextPart(msg.content))
        elif msg.content is not None:
            parts.extend(p for p in _content_parts(msg.content, "choices[0].message") if isinstance(p, ir.TextPart))
        for tc in msg.tool_calls or ():
            fn = tc.function or _InFunction()
            parts.append(
                ir.ToolCallPart(id=tc.id or new_id("call_"), name=fn.name or "", arguments=_args_text(fn.arguments))
            )
        finish = _FINISH_IN.get(choice.finish_reason or "stop", "stop")
        if finish == "stop" and any(isinstance(p, ir.ToolCallPart) for p in parts):
            finish = "tool_calls"
    return ir.Response(
        id=r.id or new_id("chatcmpl-"),
        model=r.model or "",
        created=r.created or 0,
        parts=parts,
        finish_reason=finish,
        usage=_usage_in(r.usage) if r.usage is not None else None,
    )


def _encode_response(resp: ir.Response) -> bytes:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[_OutToolCall] = []
    for p in resp.parts:
        if isinstance(p, ir.TextPart):
            text.append(p.text)
        elif isinstance(p, ir.ReasoningPart):
            if p.text:
                reasoning.append(p.text)
        elif isinstance(p, ir.ToolCallPart):
            calls.append(
                _OutToolCall(
                    id=p.id,
                    type="function",
                    function=_OutFunction(name=p.name, arguments=p.arguments or "{}"),
                )
            )
    message = _OutMessage(
        role="assistant",
        content="".join(text) if text else None,
        reasoning_content="".join(reasoning) if reasoning else UNSET,
        tool_calls=calls or UNSET,
    )
    out = _OutCompletion(
        id=resp.id or new_id("chatcmpl-"),
        object="chat.completion",
        created=resp.created or int(time.time()),
        model=resp.model,
        choices=[_OutChoice(index=0, message=message, finish_reason=_finish_out(resp.finish_reason, bool(calls)))],
        usage=_usage_out(resp.usage) if resp.usage is not None else UNSET,
    )
    return _ENC.encode(out)


# --------------------------------------------------------------------------------------------- streaming


class _ToolState:
    __slots__ = ("args", "id", "index", "name")

    def __init__(self) -> None:
        self.index = -1
        self.id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []


class ChatStreamDecoder:
    """``chat.completion.chunk`` SSE events → IR events (choice 0 only).

    Tool calls are re-indexed 0, 1, ... in order of first appearance; a call whose first fragment lacks the
    name is held back until the name arrives, and a missing id is synthesised as ``call_<respId>_0_<toolIdx>``
    (spec §4.0.8). Comments, ``event:`` names, non-JSON payloads and anything after ``[DONE]`` are ignored
    (spec §7.10).
    """

    __slots__ = ("_done", "_finish", "_finished", "_id", "_started", "_tool_count", "_tools", "_usage")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._finish: ir.FinishReason | None = None
        self._usage: ir.Usage | None = None
        self._tools: dict[int, _ToolState] = {}
        self._tool_count = 0
        self._id = ""

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = event.data.strip()
        if not data:
            return []
        if data == b"[DONE]":
            self._done = True
            return self._finalize(default=True)
        if data[0] != 0x7B:  # '{'
            return []
        try:
            chunk = _RESP_DEC.decode(data)
        except msgspec.DecodeError:
            return []
        out: list[ir.Event] = []
        if chunk.error is not None:
            self._done = True
            code = chunk.error.code
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            message = str(chunk.error.message or "upstream error")
            return [ir.Error(status=status, message=message, kind=kind_for_status(status))]
        if not self._started:
            self._started = True
            self._id = chunk.id or new_id("chatcmpl-")
            out.append(ir.Start(id=self._id, model=chunk.model or "", created=chunk.created or 0))
        if chunk.usage is not None:
            self._usage = _usage_in(chunk.usage)
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta or choice.message
            if delta is not None:
                self._delta(delta, out)
            if choice.finish_reason:
                self._finish = _FINISH_IN.get(choice.finish_reason, "stop")
        if self._finish is not None and chunk.usage is not None and not self._finished:
            out.extend(self._finalize(default=False))
        return out

    def _delta(self, d: _InMessage, out: list[ir.Event]) -> None:
        reasoning = d.reasoning_content or (d.reasoning if isinstance(d.reasoning, str) else None)
        if reasoning:
            out.append(ir.ReasoningDelta(text=reasoning))
        if isinstance(d.content, str):
            if d.content:
                out.append(ir.TextDelta(d.content))
        elif d.content:
            for p in d.content:
                if p.type == "text" and p.text:
                    out.append(ir.TextDelta(p.text))
        if not d.tool_calls:
            return
        for pos, tc in enumerate(d.tool_calls):
            key = tc.index if tc.index is not None else pos
            st = self._tools.get(key)
            if st is None:
                st = self._tools[key] = _ToolState()
            if tc.id and st.id is None:
                st.id = tc.id
            fn = tc.function
            if fn is not None and fn.name and st.name is None:
                st.name = fn.name
            args = _args_piece(fn.arguments) if fn is not None else ""
            if st.index < 0:
                if args:
                    st.args.append(args)
                if st.name is None:
                    continue
                st.index = self._tool_count
                self._tool_count += 1
                call_id = st.id or f"call_{self._id}_0_{key}"
                out.append(ir.ToolCallStart(index=st.index, id=call_id, name=st.name))
                if st.args:
                    out.append(ir.ToolArgsDelta(index=st.index, json="".join(st.args)))
                    st.args = []
            elif args:
                out.append(ir.ToolArgsDelta(index=st.index, json=args))

    def _finalize(self, *, default: bool) -> list[ir.Event]:
        if self._finished or not self._started:
            return []
        if self._finish is None:
            if not default:
                return []
            self._finish = "stop"
        self._finished = True
        out: list[ir.Event] = []
        if self._usage is not None:
            out.append(ir.UsageEvent(self._usage))
        reason = self._finish
        if reason == "stop" and self._tool_count:
            reason = "tool_calls"
        out.append(ir.Finish(reason))
        return out

    def close(self) -> list[ir.Event]:
        # Without [DONE] only a finish the upstream really sent is forwarded; inventing one is the pipeline's.
        self._done = True
        return self._finalize(default=False)


def _args_piece(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return _ENC.encode(arguments).decode()


class ChatStreamEncoder:
    """IR events → ``data: {chat.completion.chunk}`` frames in the order of spec §6.1.

    The chunk envelope (id, created, model) is identical for every chunk, so it is serialised once into a
    byte prefix and only the delta is encoded per event. Usage goes on the finish chunk, or — when the client
    asked for ``stream_options.include_usage`` — into the OpenAI-native trailing
    ``{"choices":[],"usage":...}`` chunk instead.
    """

    __slots__ = (
        "_created",
        "_done",
        "_head",
        "_id",
        "_include_usage",
        "_model",
        "_saw_tool",
        "_started",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._include_usage = bool(req.include_usage)
        self._started = False
        self._done = False
        self._saw_tool = False
        self._usage: ir.Usage | None = None
        self._id = ""
        self._created = 0
        self._head = b""

    def _start(self, ev: ir.Start | None) -> bytes:
        self._started = True
        self._id = (ev.id if ev is not None else "") or new_id("chatcmpl-")
        self._created = (ev.created if ev is not None else 0) or int(time.time())
        if not self._model and ev is not None:
            self._model = ev.model
        self._head = (
            b'data: {"id":'
            + _ENC.encode(self._id)
            + b',"object":"chat.completion.chunk","created":'
            + str(self._created).encode()
            + b',"model":'
            + _ENC.encode(self._model)
            + b',"choices":[{"index":0,"delta":'
        )
        return self._delta(_OutDelta(role="assistant", content=""))

    def _delta(self, delta: _OutDelta, finish: str | None = None) -> bytes:
        tail = b',"finish_reason":null}]}\n\n' if finish is None else b',"finish_reason":"' + finish.encode() + b'"}]'
        return self._head + _ENC.encode(delta) + tail

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event)
        prefix = b"" if self._started else self._start(None)
        if isinstance(event, ir.TextDelta):
            return prefix + self._delta(_OutDelta(content=event.text)) if event.text else prefix
        if isinstance(event, ir.ReasoningDelta):
            return prefix + self._delta(_OutDelta(reasoning_content=event.text)) if event.text else prefix
        if isinstance(event, ir.ToolArgsDelta):
            if not event.json:
                return prefix
            call = _OutToolCall(index=event.index, function=_OutFunction(arguments=event.json))
            return prefix + self._delta(_OutDelta(tool_calls=[call]))
        if isinstance(event, ir.ToolCallStart):
            self._saw_tool = True
            call = _OutToolCall(
                index=event.index,
                id=event.id,
                type="function",
                function=_OutFunction(name=event.name, arguments=""),
            )
            return prefix + self._delta(_OutDelta(tool_calls=[call]))
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return prefix
        if isinstance(event, ir.Finish):
            return prefix + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            return prefix + frame(_error_out(event))
        return prefix  # BlockStop: chunk boundaries already separate blocks

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        finish = _finish_out(reason, self._saw_tool)
        usage = self._usage or ir.Usage()
        if self._include_usage:
            out = self._delta(_OutDelta(), finish) + b"}\n\n"
            trailer = _OutChunk(
                id=self._id,
                object="chat.completion.chunk",
                created=self._created,
                model=self._model,
                choices=[],
                usage=_usage_out(usage),
            )
            out += frame(_ENC.encode(trailer))
        elif self._usage is not None:
            out = self._delta(_OutDelta(), finish) + b',"usage":' + _ENC.encode(_usage_out(usage)) + b"}\n\n"
        else:
            out = self._delta(_OutDelta(), finish) + b"}\n\n"
        return out + _DONE_FRAME

    def close(self) -> bytes:
        if self._done:
            return b""
        prefix = b"" if self._started else self._start(None)
        return prefix + self._finish("stop")


# --------------------------------------------------------------------------------------------- codec


class OpenAIChatCodec:
    """OpenAI Chat Completions ↔ IR."""

    name = NAME

    def decode_request(self, body: bytes) -> ir.Request:
        return _decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return _encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return _decode_response(body)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return _encode_response(resp)

    def stream_decoder(self, req: ir.Request | None = None) -> ChatStreamDecoder:
        return ChatStreamDecoder()

    def stream_encoder(self, req: ir.Request) -> ChatStreamEncoder:
        return ChatStreamEncoder(req)


CODEC: Final = OpenAIChatCodec()
