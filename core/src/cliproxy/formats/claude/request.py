"""Anthropic Messages requests ↔ IR.

Anthropic validates requests strictly, so :func:`encode_request` enforces its rules whatever the source dialect
allowed: ``max_tokens`` is always present and above the thinking budget, same-role turns are merged, tool
results lead their user turn, empty text blocks are dropped, thinking is switched off where Anthropic would
reject it, and sampling knobs are not sent. ``tool_result`` blocks decode into ``Message(role="tool")`` turns
(the user's other blocks follow in a ``user`` turn), and tool-call names are recovered from the history so
dialects that need a function name on every result (Gemini) have it. Thinking signatures are only valid for
Claude: reasoning from other dialects is dropped from the request history, because Anthropic rejects unsigned
or foreign-signed thinking.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from ... import ir
from ...thinking import resolve_budget
from ..base import CodecError
from .mapping import _args_raw
from .wire import (
    _ENC,
    _PASSTHROUGH,
    _REQ_DEC,
    NAME,
    _Block,
    _Message,
    _Metadata,
    _Request,
    _Source,
    _Thinking,
    _ToolChoice,
)

__all__ = ["decode_request", "encode_request"]


#: Anthropic's minimum thinking budget, and what a dynamic ("auto") budget becomes (Claude needs a number).
_MIN_BUDGET: Final = 1024
_AUTO_BUDGET: Final = 8192
_DEFAULT_MAX_TOKENS: Final = 32000
_EMPTY_SCHEMA: Final[dict[str, Any]] = {"type": "object", "properties": {}}
_BAD_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")


def _default_max_tokens(model: str) -> int:
    """``max_tokens`` is required: 32000 when the client gave none, less for older models that reject it."""
    m = model.lower()
    if m.startswith("claude-3-5") or m.startswith("claude-3.5"):
        return 8192
    if m.startswith("claude-3-") and not m.startswith("claude-3-7"):
        return 4096
    return _DEFAULT_MAX_TOKENS


def _tool_id(call_id: str) -> str:
    """Anthropic requires ``^[a-zA-Z0-9_-]+$``; ids from other dialects (``functions.f:0``) are mapped 1:1."""
    if call_id and _BAD_ID_CHARS.search(call_id) is None:
        return call_id
    return _BAD_ID_CHARS.sub("_", call_id) or "toolu_empty"


def _cc(value: dict[str, Any] | UnsetType) -> dict[str, Any] | None:
    return None if value is UNSET else value


def _text_or_raise(b: _Block, where: str) -> str:
    if b.text is UNSET:
        raise CodecError(f"{where}.text is required")
    return b.text


# --------------------------------------------------------------------------------------------- request decode


def _media_part(b: _Block, where: str) -> ir.ImagePart | ir.TextPart | None:
    src = b.source
    if src is UNSET:
        raise CodecError(f"{where}.source is required")
    doc = b.type == "document"
    ext: dict[str, Any] = {}
    if doc:
        meta = {k: v for k in ("title", "context", "citations") if (v := getattr(b, k)) is not UNSET}
        ext = {NAME: {"document": meta}}
    cache = _cc(b.cache_control)
    default_mt = "application/pdf" if doc else "image/png"
    if src.type == "base64":
        if src.data is UNSET:
            raise CodecError(f"{where}.source.data is required")
        mt = src.media_type if src.media_type is not UNSET else default_mt
        return ir.ImagePart(media_type=mt, data=src.data, cache_control=cache, ext=ext)
    if src.type == "url":
        if src.url is UNSET:
            raise CodecError(f"{where}.source.url is required")
        return ir.ImagePart(media_type=default_mt, url=src.url, cache_control=cache, ext=ext)
    if src.type == "text" and src.data is not UNSET:
        return ir.TextPart(src.data, cache_control=cache, ext=ext)
    return None  # file ids and content sources only mean something to Anthropic's own storage


def _result_content(b: _Block, where: str) -> list[ir.TextPart | ir.ImagePart]:
    content = b.content
    if content is UNSET:
        return []
    if isinstance(content, str):
        return [ir.TextPart(content)]
    out: list[ir.TextPart | ir.ImagePart] = []
    for j, c in enumerate(content):
        w = f"{where}.content[{j}]"
        if c.type == "text":
            out.append(ir.TextPart(_text_or_raise(c, w), cache_control=_cc(c.cache_control)))
        elif c.type in ("image", "document"):
            part = _media_part(c, w)
            if part is not None:
                out.append(part)
    return out


def _decode_message(i: int, m: _Message, names: dict[str, str], out: list[ir.Message]) -> None:
    where = f"messages[{i}]"
    role = m.role
    if role not in ("user", "assistant", "system"):
        raise CodecError(f"{where}.role: unsupported role {role!r}")
    if isinstance(m.content, str):
        parts: list[ir.Part] = [ir.TextPart(m.content)]
        results: list[ir.Part] = []
    else:
        parts = []
        results = []
        for j, b in enumerate(m.content):
            w = f"{where}.content[{j}]"
            kind = b.type
            if kind == "text":
                parts.append(ir.TextPart(_text_or_raise(b, w), cache_control=_cc(b.cache_control)))
            elif kind in ("image", "document"):
                part = _media_part(b, w)
                if part is not None:
                    parts.append(part)
            elif kind == "tool_use":
                if b.id is UNSET or b.name is UNSET:
                    raise CodecError(f"{w}: tool_use needs id and name")
                args = bytes(b.input).decode() if b.input is not UNSET else "{}"
                names[b.id] = b.name
                parts.append(ir.ToolCallPart(id=b.id, name=b.name, arguments=args))
            elif kind == "tool_result":
                if b.tool_use_id is UNSET:
                    raise CodecError(f"{w}.tool_use_id is required")
                results.append(
                    ir.ToolResultPart(
                        call_id=b.tool_use_id,
                        name=names.get(b.tool_use_id),
                        content=_result_content(b, w),
                        is_error=b.is_error is True,
                        cache_control=_cc(b.cache_control),
                    )
                )
            elif kind == "thinking":
                sig = b.signature if b.signature is not UNSET else None
                text = b.thinking if b.thinking is not UNSET else ""
                parts.append(ir.ReasoningPart(text=text, signature=sig or None, origin=NAME))
            elif kind == "redacted_thinking":
                if b.data is UNSET:
                    raise CodecError(f"{w}.data is required")
                parts.append(ir.ReasoningPart(encrypted=b.data, origin=NAME))
            # server_tool_use / *_tool_result / container_upload ... only mean something to Anthropic itself.
    if results:
        out.append(ir.Message(role="tool", parts=results))
    if role == "system":
        texts: list[ir.Part] = [p for p in parts if isinstance(p, ir.TextPart)]
        out.append(ir.Message(role="system", parts=texts, ext={NAME: {"native": True}}))
    elif parts or not results:
        out.append(ir.Message(role=role, parts=parts))  # type: ignore[arg-type]


def _decode_reasoning(r: _Request) -> ir.ReasoningConfig | None:
    t = r.thinking
    if t is UNSET:
        return None
    if t.type == "enabled":
        if t.budget_tokens is UNSET:
            return ir.ReasoningConfig(effort="auto", include_thoughts=True)
        return ir.ReasoningConfig(budget=t.budget_tokens, include_thoughts=True)
    if t.type == "disabled":
        return ir.ReasoningConfig(budget=0)
    # "adaptive": the model picks its depth; Claude Code pairs it with output_config.effort.
    effort = "auto"
    oc = r.output_config
    if isinstance(oc, dict) and isinstance(oc.get("effort"), str):
        effort = oc["effort"]
    return ir.ReasoningConfig(effort=effort, include_thoughts=True)


def decode_request(body: bytes) -> ir.Request:
    try:
        r = _REQ_DEC.decode(body)
    except msgspec.ValidationError as e:
        raise CodecError(f"invalid messages request: {e}") from None
    except msgspec.DecodeError as e:
        raise CodecError(f"request body is not valid JSON: {e}") from None

    system: list[ir.TextPart] = []
    if isinstance(r.system, str):
        if r.system:
            system.append(ir.TextPart(r.system))
    elif r.system is not UNSET:
        for j, b in enumerate(r.system):
            if b.type == "text":
                system.append(ir.TextPart(_text_or_raise(b, f"system[{j}]"), cache_control=_cc(b.cache_control)))

    names: dict[str, str] = {}
    messages: list[ir.Message] = []
    for i, m in enumerate(r.messages):
        _decode_message(i, m, names, messages)

    tools: list[ir.Tool] = []
    server_tools: list[dict[str, Any]] = []
    for i, t in enumerate(r.tools or ()):
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise CodecError(f"tools[{i}].name is required")
        kind = t.get("type")
        if kind not in (None, "custom"):
            server_tools.append(t)
            continue
        schema = t.get("input_schema")
        desc = t.get("description")
        tools.append(
            ir.Tool(
                name=name,
                description=desc if isinstance(desc, str) else None,
                parameters=schema if isinstance(schema, dict) else None,
                strict=t.get("strict") if isinstance(t.get("strict"), bool) else None,
                cache_control=t.get("cache_control") if isinstance(t.get("cache_control"), dict) else None,
            )
        )

    tool_choice: ir.ToolChoice | None = None
    parallel: bool | None = None
    tc = r.tool_choice
    if tc is not UNSET:
        if tc.type == "auto":
            tool_choice = ir.ToolChoice(mode="auto")
        elif tc.type == "any":
            tool_choice = ir.ToolChoice(mode="required")
        elif tc.type == "none":
            tool_choice = ir.ToolChoice(mode="none")
        elif tc.type == "tool":
            if tc.name is UNSET:
                raise CodecError("tool_choice.name is required for type 'tool'")
            tool_choice = ir.ToolChoice(mode="tool", name=tc.name)
        else:
            raise CodecError(f"tool_choice.type: unsupported value {tc.type!r}")
        if tc.disable_parallel_tool_use is not UNSET:
            parallel = not tc.disable_parallel_tool_use

    ext: dict[str, Any] = {k: v for k in _PASSTHROUGH if (v := getattr(r, k)) is not UNSET}
    if server_tools:
        ext["server_tools"] = server_tools
    if r.thinking is not UNSET and r.thinking.type == "adaptive":
        ext["thinking"] = {"type": "adaptive"}

    def opt(v: Any) -> Any:
        return None if v is UNSET else v

    return ir.Request(
        model=r.model,
        system=system,
        messages=messages,
        stream=r.stream is True,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=opt(r.max_tokens),
        temperature=opt(r.temperature),
        top_p=opt(r.top_p),
        top_k=opt(r.top_k),
        stop=list(r.stop_sequences) if r.stop_sequences is not UNSET else [],
        reasoning=_decode_reasoning(r),
        user=r.metadata.user_id or None if r.metadata is not UNSET and r.metadata.user_id is not UNSET else None,
        ext={NAME: ext} if ext else {},
    )


# --------------------------------------------------------------------------------------------- request encode


def _media_block(p: ir.ImagePart) -> _Block | None:
    doc = (p.ext.get(NAME) or {}).get("document")
    is_pdf = p.media_type == "application/pdf"
    if p.data is not None:
        if not (p.media_type.startswith("image/") or is_pdf):
            return None  # audio/video/other files: Anthropic has no block for them
        src = _Source(type="base64", media_type=p.media_type, data=p.data)
    elif p.url:
        src = _Source(type="url", url=p.url)
    else:
        return None
    block = _Block(
        type="document" if is_pdf or doc is not None else "image",
        source=src,
        cache_control=p.cache_control if p.cache_control is not None else UNSET,
    )
    if isinstance(doc, dict):
        for key in ("title", "context", "citations"):
            if key in doc:
                setattr(block, key, doc[key])
    return block


def _text_block(p: ir.TextPart) -> _Block:
    return _Block(type="text", text=p.text, cache_control=p.cache_control if p.cache_control is not None else UNSET)


def _result_block(p: ir.ToolResultPart) -> _Block:
    blocks: list[_Block] = []
    for c in p.content:
        if isinstance(c, ir.TextPart):
            if c.text.strip():
                blocks.append(_text_block(c))
        else:
            b = _media_block(c)
            if b is not None:
                blocks.append(b)
    content: str | list[_Block]
    if len(blocks) == 1 and blocks[0].type == "text" and blocks[0].cache_control is UNSET:
        content = blocks[0].text  # type: ignore[assignment]
    else:
        content = blocks
    return _Block(
        type="tool_result",
        tool_use_id=_tool_id(p.call_id),
        content=content,
        is_error=True if p.is_error else UNSET,
        cache_control=p.cache_control if p.cache_control is not None else UNSET,
    )


def _encode_turns(req: ir.Request) -> list[tuple[str, list[_Block], list[_Block]]]:
    """IR messages → ``(role, tool_results, other_blocks)`` turns with same-role neighbours merged."""
    turns: list[tuple[str, list[_Block], list[_Block]]] = []
    for m in req.messages:
        results: list[_Block] = []
        blocks: list[_Block] = []
        if m.role == "assistant":
            role = "assistant"
            for p in m.parts:
                if isinstance(p, ir.TextPart):
                    if p.text.strip():
                        blocks.append(_text_block(p))
                elif isinstance(p, ir.ToolCallPart):
                    blocks.append(_Block(type="tool_use", id=_tool_id(p.id), name=p.name, input=_args_raw(p.arguments)))
                elif isinstance(p, ir.ReasoningPart) and p.origin == NAME:
                    if p.encrypted:
                        blocks.append(_Block(type="redacted_thinking", data=p.encrypted))
                    elif p.signature:
                        blocks.append(_Block(type="thinking", thinking=p.text, signature=p.signature))
        elif m.role == "system" and (m.ext.get(NAME) or {}).get("native"):
            role = "system"  # a Claude client used mid-conversation system turns: give them back as sent
            blocks = [_text_block(p) for p in m.parts if isinstance(p, ir.TextPart) and p.text.strip()]
        else:
            role = "user"  # user, tool and (folded: Claude only has a top-level system prompt) system turns
            for p in m.parts:
                if isinstance(p, ir.ToolResultPart):
                    results.append(_result_block(p))
                elif isinstance(p, ir.TextPart):
                    if p.text.strip():
                        blocks.append(_text_block(p))
                elif isinstance(p, ir.ImagePart):
                    b = _media_block(p)
                    if b is not None:
                        blocks.append(b)
        if not results and not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(results)
            turns[-1][2].extend(blocks)
        else:
            turns.append((role, results, blocks))
    return turns


def _thinking_allowed(req: ir.Request, messages: list[_Message]) -> bool:
    """Anthropic rejects thinking with forced tool use, and when the turn in progress replays a tool call
    whose assistant message does not start with a (signed) thinking block — typical for foreign history."""
    if req.tool_choice is not None and req.tool_choice.mode in ("required", "tool"):
        return False
    for m in reversed(messages):
        if m.role != "assistant":
            continue
        blocks = m.content
        assert isinstance(blocks, list)
        if any(b.type == "tool_use" for b in blocks):
            return blocks[0].type in ("thinking", "redacted_thinking")
        return True
    return True


def encode_request(req: ir.Request) -> bytes:
    ext: dict[str, Any] = req.ext.get(NAME) or {}
    messages: list[_Message] = []
    for role, results, blocks in _encode_turns(req):
        messages.append(_Message(role=role, content=results + blocks))
    if messages and messages[-1].role == "assistant":
        # A prefilled final assistant turn may not end in whitespace.
        last = messages[-1].content
        assert isinstance(last, list)
        if last[-1].type == "text" and isinstance(last[-1].text, str):
            last[-1].text = last[-1].text.rstrip()

    system_parts = [p for p in req.system if p.text.strip()]
    system: str | list[_Block] | UnsetType = UNSET
    if len(system_parts) == 1 and system_parts[0].cache_control is None:
        system = system_parts[0].text
    elif system_parts:
        system = [_text_block(p) for p in system_parts]

    tools: list[dict[str, Any]] = []
    for t in req.tools:
        tool: dict[str, Any] = {"name": t.name}
        if t.description:
            tool["description"] = t.description
        tool["input_schema"] = t.parameters if t.parameters is not None else _EMPTY_SCHEMA
        if t.cache_control is not None:
            tool["cache_control"] = t.cache_control
        tools.append(tool)
    tools.extend(ext.get("server_tools") or ())

    tool_choice: _ToolChoice | UnsetType = UNSET
    if tools:
        mode = req.tool_choice.mode if req.tool_choice is not None else None
        no_parallel: bool | UnsetType = True if req.parallel_tool_calls is False else UNSET
        if mode == "required":
            tool_choice = _ToolChoice(type="any", disable_parallel_tool_use=no_parallel)
        elif mode == "tool" and req.tool_choice is not None and req.tool_choice.name:
            tool_choice = _ToolChoice(type="tool", name=req.tool_choice.name, disable_parallel_tool_use=no_parallel)
        elif mode == "none":
            tool_choice = _ToolChoice(type="none")
        elif mode == "auto" or no_parallel is True:
            tool_choice = _ToolChoice(type="auto", disable_parallel_tool_use=no_parallel)

    max_tokens = req.max_tokens if req.max_tokens is not None else _default_max_tokens(req.model)
    thinking: _Thinking | UnsetType = UNSET
    budget = resolve_budget(req.reasoning)
    if budget == 0:
        thinking = _Thinking(type="disabled")
    elif budget is not None and _thinking_allowed(req, messages):
        if (ext.get("thinking") or {}).get("type") == "adaptive":
            thinking = _Thinking(type="adaptive")  # a Claude client's own choice: no budget to enforce
        else:
            budget = _AUTO_BUDGET if budget < 0 else max(budget, _MIN_BUDGET)
            thinking = _Thinking(type="enabled", budget_tokens=budget)
            if max_tokens <= budget:
                max_tokens = budget + max_tokens  # keep the caller's answer allowance on top of the thinking

    body = _Request(
        model=req.model,
        messages=messages,
        max_tokens=max_tokens,
        system=system,
        metadata=_Metadata(user_id=req.user) if req.user else UNSET,
        stop_sequences=[s for s in req.stop if s.strip()] or UNSET,
        stream=True if req.stream else UNSET,
        # Sampling knobs are gone from the current Messages API (the official SDK's request type has no
        # temperature/top_p/top_k) and current models reject them; other dialects send them routinely.
        tools=tools or UNSET,
        tool_choice=tool_choice,
        thinking=thinking,
        **{k: ext[k] for k in _PASSTHROUGH if k in ext},
    )
    return _ENC.encode(body)
