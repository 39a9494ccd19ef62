"""OpenAI Chat Completions requests ↔ IR.

Things the IR cannot express (``logit_bias``, ``max_completion_tokens`` vs ``max_tokens`` ...) travel in
``ext["openai"]`` so an openai → openai trip through the IR loses nothing important. Tool results decode into
``Message(role="tool")``; the encoder accepts them in ``user`` messages too.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from ... import ir
from ...thinking import resolve_effort
from ..base import CodecError, new_id
from .wire import (
    _ENC,
    _PASSTHROUGH,
    _REQ_DEC,
    NAME,
    _ContentPart,
    _File,
    _Function,
    _ImageURL,
    _InputAudio,
    _JSONSchema,
    _Message,
    _NamedFunction,
    _Request,
    _ResponseFormat,
    _StreamOptions,
    _Tool,
    _ToolCall,
    _ToolChoiceObject,
    _ToolFunction,
)

__all__ = ["decode_request", "encode_request", "parse_data_url"]


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


def decode_request(body: bytes) -> ir.Request:
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
            continue  # built-in tools (web search, file search ...) have no cross-dialect meaning
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


def encode_request(req: ir.Request) -> bytes:
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
        # Compatible upstreams do not know "minimal" (it becomes low) or other unknown levels (auto).
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
