"""OpenAI Responses requests ↔ IR (``input`` items, tools, ``text.format``, ``reasoning``).

Choosing Codex's official ``instructions`` and forcing ``store``/``stream``/``include`` are executor concerns and
stay out of this codec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ... import ir
from ...thinking import resolve_effort
from ..base import CodecError
from .names import shorten_tool_names
from .wire import _DIALECT, _EXT_FIELDS, ContentPart, InputItem, ResponsesRequest, _encode, _ext, _request_decoder

__all__ = ["decode_request", "encode_request", "encode_request_dict"]


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
                # Orphan output (its call lived behind previous_response_id, which other upstreams cannot
                # resolve): a plain user message, because a tool result without its call is rejected by
                # every upstream.
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
    """The assistant turn to append to: consecutive output items form one turn, so parallel calls stay together."""
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


def decode_request(body: bytes) -> ir.Request:
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


def encode_request(req: ir.Request) -> bytes:
    return _encode(encode_request_dict(req))
