"""Anthropic Messages codec (dialect ``claude``): ``/v1/messages`` clients and Claude upstreams.

Anthropic validates requests strictly, so :func:`_encode_request` enforces its rules whatever the source
dialect allowed (spec §4.E, §7.25): ``max_tokens`` is always present and above the thinking budget, same-role
turns are merged, tool results lead their user turn, empty text blocks are dropped, thinking is switched off
where Anthropic would reject it, and only ``temperature`` is sent when both sampling knobs are set.

Conventions shared with the other codecs:

* ``Usage.input_tokens`` *includes* cache reads and writes (OpenAI/Gemini semantics); Claude's own
  ``input_tokens`` excludes them, so this codec adds them on decode and subtracts them on encode.
* ``tool_result`` blocks decode into ``Message(role="tool")`` turns (the user's other blocks follow in a
  ``user`` turn); tool-call names are recovered from the history so Gemini can use them (spec §7.19).
* Thinking signatures are only valid for Claude: reasoning from other dialects is sent without one (response
  side) or dropped (request history), because Anthropic rejects unsigned or foreign-signed thinking.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .. import ir
from ..errors import ErrorKind
from ..sse import SSEEvent, SSEParser, frame
from ..thinking import resolve_budget
from .base import CodecError, new_id

__all__ = ["CODEC", "ClaudeCodec", "ClaudeStreamDecoder", "ClaudeStreamEncoder"]

NAME: Final = "claude"

# --------------------------------------------------------------------------------------------- wire types


class _Source(Struct, omit_defaults=True):
    type: str
    media_type: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET


class _Block(Struct, omit_defaults=True):
    """Every content block shape in one Struct: cheap to decode and lenient about new block types."""

    type: str
    text: str | UnsetType = UNSET
    source: _Source | UnsetType = UNSET
    id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    #: Raw JSON so tool arguments reach the IR as the exact text the client sent.
    input: msgspec.Raw | UnsetType = UNSET
    tool_use_id: str | UnsetType = UNSET
    content: str | list[_Block] | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET
    thinking: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET
    data: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    context: str | UnsetType = UNSET
    citations: Any = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET


class _Message(Struct, omit_defaults=True):
    role: str
    content: str | list[_Block]


class _Metadata(Struct, omit_defaults=True):
    user_id: str | UnsetType = UNSET


class _Thinking(Struct, omit_defaults=True):
    type: str
    budget_tokens: int | UnsetType = UNSET


class _ToolChoice(Struct, omit_defaults=True):
    type: str
    name: str | UnsetType = UNSET
    disable_parallel_tool_use: bool | UnsetType = UNSET


class _Request(Struct, omit_defaults=True):
    model: str
    messages: list[_Message]
    max_tokens: int | UnsetType = UNSET
    system: str | list[_Block] | UnsetType = UNSET
    metadata: _Metadata | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    #: Tools stay dicts: server tools (web_search, bash, ...) carry type-specific keys that must survive.
    tools: list[dict[str, Any]] | UnsetType = UNSET
    tool_choice: _ToolChoice | UnsetType = UNSET
    thinking: _Thinking | UnsetType = UNSET
    # Claude-only options, carried verbatim in ext["claude"] for Claude upstreams.
    output_config: Any = UNSET
    context_management: Any = UNSET
    service_tier: Any = UNSET
    container: Any = UNSET
    mcp_servers: Any = UNSET
    inference_geo: Any = UNSET
    speed: Any = UNSET
    cache_control: Any = UNSET


_PASSTHROUGH: Final = (
    "output_config",
    "context_management",
    "service_tier",
    "container",
    "mcp_servers",
    "inference_geo",
    "speed",
    "cache_control",
)


class _Usage(Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _InMessage(Struct):
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: _Usage | None = None


class _InDelta(Struct):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _InError(Struct):
    type: str = "api_error"
    message: str = ""


class _InEvent(Struct):
    """Any Messages stream event, or a whole ``message`` / error body."""

    type: str = ""
    message: _InMessage | None = None
    index: int | None = None
    content_block: _Block | None = None
    delta: _InDelta | None = None
    usage: _Usage | None = None
    error: _InError | None = None
    # A non-stream ``message`` body carries these at top level.
    id: str = ""
    model: str = ""
    content: list[_Block] | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _OutUsage(Struct, omit_defaults=True):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | UnsetType = UNSET
    cache_read_input_tokens: int | UnsetType = UNSET


class _OutMessage(Struct):
    id: str
    type: str
    role: str
    model: str
    content: list[_Block]
    stop_reason: str | None
    stop_sequence: str | None
    usage: _OutUsage


class _EvMessageStart(Struct):
    type: str
    message: _OutMessage


class _EvBlockStart(Struct):
    type: str
    index: int
    content_block: _Block


class _DeltaBody(Struct):
    stop_reason: str | None
    stop_sequence: str | None


class _EvMessageDelta(Struct):
    type: str
    delta: _DeltaBody
    usage: _OutUsage


class _ErrBody(Struct):
    type: str
    message: str


class _EvError(Struct):
    type: str
    error: _ErrBody


_REQ_DEC: Final = msgspec.json.Decoder(_Request)
_EVENT_DEC: Final = msgspec.json.Decoder(_InEvent)
_ARGS_DEC: Final = msgspec.json.Decoder(dict[str, Any])
_ENC: Final = msgspec.json.Encoder()

# --------------------------------------------------------------------------------------------- mappings

_STOP_IN: Final[dict[str, ir.FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_OUT: Final[dict[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "end_turn",
    "error": "end_turn",
}
_ERROR_KIND_IN: Final[dict[str, tuple[int, ErrorKind]]] = {
    "invalid_request_error": (400, "invalid_request"),
    "authentication_error": (401, "authentication"),
    "permission_error": (403, "permission"),
    "not_found_error": (404, "not_found"),
    "request_too_large": (413, "request_too_large"),
    "rate_limit_error": (429, "rate_limit"),
    "api_error": (500, "server"),
    "timeout_error": (504, "timeout"),
    "overloaded_error": (529, "overloaded"),
}
_ERROR_TYPE_OUT: Final[dict[str, str]] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "overloaded": "overloaded_error",
}

#: Anthropic's minimum thinking budget, and what a dynamic ("auto") budget becomes (spec §4.0.3).
_MIN_BUDGET: Final = 1024
_AUTO_BUDGET: Final = 8192
_DEFAULT_MAX_TOKENS: Final = 32000
_EMPTY_OBJECT: Final = msgspec.Raw(b"{}")
_EMPTY_SCHEMA: Final[dict[str, Any]] = {"type": "object", "properties": {}}
_BAD_ID_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")


def _default_max_tokens(model: str) -> int:
    """Older models reject 32000 outright; newer ones all accept it (spec §4.E skeleton)."""
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


def _usage_in(u: _Usage | None, base: ir.Usage | None = None) -> ir.Usage:
    """Claude usage → IR; ``base`` carries the ``message_start`` numbers a ``message_delta`` may omit."""
    cache_read = (u.cache_read_input_tokens if u else None) or 0
    cache_write = (u.cache_creation_input_tokens if u else None) or 0
    if u is None or u.input_tokens is None:
        if base is not None:
            return ir.Usage(
                input_tokens=base.input_tokens,
                output_tokens=(u.output_tokens if u else None) or base.output_tokens,
                cached_tokens=base.cached_tokens,
                cache_creation_tokens=base.cache_creation_tokens,
            )
        return ir.Usage(output_tokens=(u.output_tokens if u else None) or 0)
    if base is not None and u.cache_read_input_tokens is None and u.cache_creation_input_tokens is None:
        cache_read, cache_write = base.cached_tokens, base.cache_creation_tokens
    return ir.Usage(
        input_tokens=u.input_tokens + cache_read + cache_write,
        output_tokens=u.output_tokens or 0,
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
    )


def _usage_out(u: ir.Usage | None) -> _OutUsage:
    if u is None:
        return _OutUsage(input_tokens=0, output_tokens=0)
    return _OutUsage(
        input_tokens=max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens),
        output_tokens=u.output_tokens,
        cache_creation_input_tokens=u.cache_creation_tokens if u.cache_creation_tokens else UNSET,
        cache_read_input_tokens=u.cached_tokens if u.cached_tokens else UNSET,
    )


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


def _decode_request(body: bytes) -> ir.Request:
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


def _args_raw(arguments: str) -> msgspec.Raw:
    """Tool ``input`` must be a JSON object; invalid or empty argument text becomes ``{}`` (spec §4.E.1)."""
    text = arguments.strip()
    if not text.startswith("{"):
        return _EMPTY_OBJECT
    try:
        _ARGS_DEC.decode(text)
    except msgspec.DecodeError:
        return _EMPTY_OBJECT
    return msgspec.Raw(text.encode())


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
            role = "user"  # user, tool and (folded, spec §4.E.1) system turns
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


def _encode_request(req: ir.Request) -> bytes:
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


# --------------------------------------------------------------------------------------------- response


def _fold(events: list[ir.Event]) -> ir.Response:
    """Fold a decoded stream into one response: Claude upstreams are streamed even for non-stream clients."""
    rid, model, created = "", "", 0
    parts: list[ir.Part] = []
    tools: dict[int, ir.ToolCallPart] = {}
    usage: ir.Usage | None = None
    finish: ir.FinishReason = "stop"
    closed = True
    for ev in events:
        if isinstance(ev, ir.Start):
            rid, model, created = ev.id, ev.model, ev.created
        elif isinstance(ev, ir.TextDelta):
            last = parts[-1] if parts and not closed else None
            if isinstance(last, ir.TextPart):
                last.text += ev.text
            else:
                parts.append(ir.TextPart(ev.text))
            closed = False
        elif isinstance(ev, ir.ReasoningDelta):
            last = parts[-1] if parts and not closed else None
            if ev.encrypted:
                parts.append(ir.ReasoningPart(encrypted=ev.encrypted, origin=ev.origin))
                closed = True
                continue
            if not isinstance(last, ir.ReasoningPart):
                last = ir.ReasoningPart(origin=ev.origin)
                parts.append(last)
            last.text += ev.text
            if ev.signature:
                last.signature = ev.signature
            closed = False
        elif isinstance(ev, ir.ToolCallStart):
            call = ir.ToolCallPart(id=ev.id, name=ev.name, arguments="")
            tools[ev.index] = call
            parts.append(call)
            closed = True
        elif isinstance(ev, ir.ToolArgsDelta):
            if ev.index in tools:
                tools[ev.index].arguments += ev.json
        elif isinstance(ev, ir.BlockStop):
            closed = True
        elif isinstance(ev, ir.UsageEvent):
            usage = ev.usage
        elif isinstance(ev, ir.Finish):
            finish = ev.reason
        elif isinstance(ev, ir.Error):
            raise CodecError(f"upstream error: {ev.message}")
    for call in tools.values():
        if not call.arguments.strip():
            call.arguments = "{}"
    return ir.Response(id=rid, model=model, created=created, parts=parts, finish_reason=finish, usage=usage)


def _decode_response(body: bytes) -> ir.Response:
    stripped = body.lstrip()
    if stripped.startswith((b"event:", b"data:")):
        parser = SSEParser()
        decoder = ClaudeStreamDecoder()
        events: list[ir.Event] = []
        for sse in [*parser.feed(body), *parser.close()]:
            events.extend(decoder.feed(sse))
        events.extend(decoder.close())
        return _fold(events)
    try:
        r = _EVENT_DEC.decode(body)
    except msgspec.DecodeError as e:
        raise CodecError(f"invalid messages response: {e}") from None
    if r.type == "error" and r.error is not None:
        raise CodecError(f"upstream error: {r.error.message}")
    parts: list[ir.Part] = []
    thinking_chars = 0
    for b in r.content or ():
        if b.type == "text" and b.text is not UNSET:
            parts.append(ir.TextPart(b.text))
        elif b.type == "thinking":
            text = b.thinking if b.thinking is not UNSET else ""
            thinking_chars += len(text)
            sig = b.signature if b.signature is not UNSET and b.signature else None
            parts.append(ir.ReasoningPart(text=text, signature=sig, origin=NAME))
        elif b.type == "redacted_thinking" and b.data is not UNSET:
            parts.append(ir.ReasoningPart(encrypted=b.data, origin=NAME))
        elif b.type == "tool_use" and b.id is not UNSET and b.name is not UNSET:
            args = bytes(b.input).decode() if b.input is not UNSET else "{}"
            parts.append(ir.ToolCallPart(id=b.id, name=b.name, arguments=args))
    finish = _STOP_IN.get(r.stop_reason or "end_turn", "stop")
    usage = _usage_in(r.usage) if r.usage is not None else None
    if usage is not None:
        usage.reasoning_tokens = min(thinking_chars // 4, usage.output_tokens)  # Claude reports no split
    ext: dict[str, Any] = {}
    if r.stop_reason == "stop_sequence":
        ext = {NAME: {"stop_sequence": r.stop_sequence}}
    return ir.Response(id=r.id, model=r.model, parts=parts, finish_reason=finish, usage=usage, ext=ext)


def _stop_out(reason: ir.FinishReason, saw_tool: bool) -> str:
    if reason == "stop" and saw_tool:
        return "tool_use"
    return _STOP_OUT[reason]


def _reasoning_sig(p: ir.ReasoningPart | ir.ReasoningDelta) -> str | None:
    return p.signature if p.signature and p.origin in (None, NAME) else None


def _encode_response(resp: ir.Response) -> bytes:
    content: list[_Block] = []
    saw_tool = False
    for p in resp.parts:
        if isinstance(p, ir.TextPart):
            if p.text:
                content.append(_Block(type="text", text=p.text))
        elif isinstance(p, ir.ReasoningPart):
            if p.encrypted and p.origin == NAME:
                content.append(_Block(type="redacted_thinking", data=p.encrypted))
            elif p.text:
                content.append(_Block(type="thinking", thinking=p.text, signature=_reasoning_sig(p) or ""))
        elif isinstance(p, ir.ToolCallPart):
            saw_tool = True
            content.append(_Block(type="tool_use", id=p.id, name=p.name, input=_args_raw(p.arguments)))
        # Tool results and images never appear in assistant output.
    stop_sequence = (resp.ext.get(NAME) or {}).get("stop_sequence")
    stop_reason = _stop_out(resp.finish_reason, saw_tool)
    if stop_reason == "end_turn" and isinstance(stop_sequence, str):
        stop_reason = "stop_sequence"
    else:
        stop_sequence = None
    out = _OutMessage(
        id=resp.id or new_id("msg_"),
        type="message",
        role="assistant",
        model=resp.model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=_usage_out(resp.usage),
    )
    return _ENC.encode(out)


# --------------------------------------------------------------------------------------------- streaming


class ClaudeStreamDecoder:
    """Messages SSE events → IR events.

    Tool-use blocks are re-indexed 0, 1, ... among tool calls (the Claude block index also counts text and
    thinking blocks; OpenAI clients reject the gaps, spec §7.23). ``UsageEvent`` + ``Finish`` are emitted at
    ``message_delta`` with the ``message_start`` input tokens merged in (spec §4.0.6); server-tool blocks are
    skipped because no other dialect can replay them.
    """

    __slots__ = ("_base", "_blocks", "_done", "_finished", "_started", "_thinking_chars", "_tools")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finished = False
        self._base: ir.Usage | None = None
        #: Claude block index → IR tool index (or -1 for blocks whose deltas are ignored).
        self._blocks: dict[int, int] = {}
        self._tools = 0
        self._thinking_chars = 0

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        if self._done:
            return []
        data = event.data.strip()
        if not data or data[0] != 0x7B:  # '{': ignore [DONE], keep-alives and other non-JSON
            return []
        try:
            ev = _EVENT_DEC.decode(data)
        except msgspec.DecodeError:
            return []
        t = ev.type
        if t == "content_block_delta":
            return self._delta(ev)
        if t == "content_block_start":
            return self._block_start(ev)
        if t == "content_block_stop":
            return [] if self._blocks.get(ev.index if ev.index is not None else -1) == -1 else [ir.BlockStop()]
        if t == "message_start":
            msg = ev.message or _InMessage()
            self._started = True
            self._base = _usage_in(msg.usage) if msg.usage is not None else None
            return [ir.Start(id=msg.id or new_id("msg_"), model=msg.model)]
        if t == "message_delta":
            return self._message_delta(ev)
        if t == "message_stop":
            self._done = True
            return self._finish("stop") if not self._finished else []
        if t == "error":
            self._done = True
            err = ev.error or _InError()
            status, kind = _ERROR_KIND_IN.get(err.type, (500, "server"))
            return [ir.Error(status=status, message=err.message or err.type, kind=kind)]
        return []  # ping and future event types

    def _block_start(self, ev: _InEvent) -> list[ir.Event]:
        b = ev.content_block
        idx = ev.index if ev.index is not None else -1
        if b is None:
            return []
        if b.type == "tool_use":
            self._blocks[idx] = self._tools
            self._tools += 1
            out: list[ir.Event] = [
                ir.ToolCallStart(index=self._tools - 1, id=b.id or new_id("toolu_"), name=b.name or "")
            ]
            if b.input is not UNSET:
                raw = bytes(b.input)
                if raw.strip() not in (b"{}", b""):
                    out.append(ir.ToolArgsDelta(index=self._tools - 1, json=raw.decode()))
            return out
        if b.type == "text":
            return [ir.TextDelta(b.text)] if b.text else []
        if b.type == "thinking":
            text = b.thinking if b.thinking is not UNSET else ""
            self._thinking_chars += len(text)
            return [ir.ReasoningDelta(text=text, origin=NAME)] if text else []
        if b.type == "redacted_thinking" and b.data is not UNSET:
            return [ir.ReasoningDelta(encrypted=b.data, origin=NAME)]
        self._blocks[idx] = -1
        return []

    def _delta(self, ev: _InEvent) -> list[ir.Event]:
        d = ev.delta
        if d is None:
            return []
        kind = d.type
        if kind == "text_delta":
            return [ir.TextDelta(d.text)] if d.text else []
        if kind == "input_json_delta":
            tool = self._blocks.get(ev.index if ev.index is not None else -1, -1)
            if tool < 0 or not d.partial_json:
                return []
            return [ir.ToolArgsDelta(index=tool, json=d.partial_json)]
        if kind == "thinking_delta":
            if not d.thinking:
                return []
            self._thinking_chars += len(d.thinking)
            return [ir.ReasoningDelta(text=d.thinking, origin=NAME)]
        if kind == "signature_delta":
            return [ir.ReasoningDelta(signature=d.signature, origin=NAME)] if d.signature else []
        return []  # citations_delta ...

    def _message_delta(self, ev: _InEvent) -> list[ir.Event]:
        if self._finished:
            return []
        reason = ev.delta.stop_reason if ev.delta is not None else None
        usage = _usage_in(ev.usage, self._base)
        usage.reasoning_tokens = min(self._thinking_chars // 4, usage.output_tokens)
        self._base = usage
        return self._finish(_STOP_IN.get(reason or "end_turn", "stop"))

    def _finish(self, reason: ir.FinishReason) -> list[ir.Event]:
        self._finished = True
        out: list[ir.Event] = []
        if self._base is not None:
            out.append(ir.UsageEvent(self._base))
        if reason == "stop" and self._tools:
            reason = "tool_calls"
        out.append(ir.Finish(reason))
        return out

    def close(self) -> list[ir.Event]:
        self._done = True
        return []


class ClaudeStreamEncoder:
    """IR events → Messages SSE in the exact order of spec §6.3.

    Block indexes are allocated here, contiguously from 0, and at most one block is open: a change of block
    kind (or a new tool call) closes the open block first, whether or not the decoder sent ``BlockStop``.
    Text, thinking and argument deltas — the hot path — are framed from byte templates.
    """

    __slots__ = (
        "_done",
        "_id",
        "_model",
        "_next",
        "_open",
        "_open_tool",
        "_saw_tool",
        "_started",
        "_usage",
    )

    def __init__(self, req: ir.Request) -> None:
        self._model = req.model
        self._id = ""
        self._started = False
        self._done = False
        self._saw_tool = False
        self._usage: ir.Usage | None = None
        self._next = 0  # next block index
        self._open: str | None = None  # "text" | "thinking" | "tool"
        self._open_tool = -1  # IR index of the open tool call

    # -- framing helpers

    def _start(self, ev: ir.Start | None) -> bytes:
        self._started = True
        self._id = (ev.id if ev is not None else "") or new_id("msg_")
        if not self._model and ev is not None:
            self._model = ev.model
        msg = _OutMessage(
            id=self._id,
            type="message",
            role="assistant",
            model=self._model,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage=_OutUsage(input_tokens=0, output_tokens=0),
        )
        return frame(_ENC.encode(_EvMessageStart(type="message_start", message=msg)), "message_start")

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        self._open_tool = -1
        return (
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
            + str(self._next - 1).encode()
            + b"}\n\n"
        )

    def _open_block(self, kind: str, block: _Block) -> bytes:
        out = self._close()
        self._open = kind
        index = self._next
        self._next += 1
        ev = _EvBlockStart(type="content_block_start", index=index, content_block=block)
        return out + frame(_ENC.encode(ev), "content_block_start")

    def _delta(self, kind: bytes, field: bytes, value: str) -> bytes:
        return (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
            + str(self._next - 1).encode()
            + b',"delta":{"type":"'
            + kind
            + b'","'
            + field
            + b'":'
            + _ENC.encode(value)
            + b"}}\n\n"
        )

    # -- events

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.Start):
            return b"" if self._started else self._start(event)
        out = b"" if self._started else self._start(None)
        if isinstance(event, ir.TextDelta):
            if not event.text:
                return out
            if self._open != "text":
                out += self._open_block("text", _Block(type="text", text=""))
            return out + self._delta(b"text_delta", b"text", event.text)
        if isinstance(event, ir.ReasoningDelta):
            return out + self._reasoning(event)
        if isinstance(event, ir.ToolArgsDelta):
            if event.json and self._open == "tool" and event.index == self._open_tool:
                out += self._delta(b"input_json_delta", b"partial_json", event.json)
            return out
        if isinstance(event, ir.ToolCallStart):
            self._saw_tool = True
            block = _Block(type="tool_use", id=event.id, name=event.name, input=_EMPTY_OBJECT)
            out += self._open_block("tool", block)
            self._open_tool = event.index
            return out
        if isinstance(event, ir.BlockStop):
            return out + self._close()
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return out
        if isinstance(event, ir.Finish):
            return out + self._finish(event.reason)
        if isinstance(event, ir.Error):
            self._done = True
            err = _ErrBody(type=_ERROR_TYPE_OUT.get(event.kind, "api_error"), message=event.message)
            return out + frame(_ENC.encode(_EvError(type="error", error=err)), "error")
        return out

    def _reasoning(self, ev: ir.ReasoningDelta) -> bytes:
        out = b""
        if ev.encrypted:
            if ev.origin not in (None, NAME):
                return b""
            out = self._open_block("redacted", _Block(type="redacted_thinking", data=ev.encrypted))
            return out + self._close()
        if ev.text:
            if self._open != "thinking":
                out = self._open_block("thinking", _Block(type="thinking", thinking="", signature=""))
            out += self._delta(b"thinking_delta", b"thinking", ev.text)
        sig = _reasoning_sig(ev)
        if sig and self._open == "thinking":
            out += self._delta(b"signature_delta", b"signature", sig)
        return out

    def _finish(self, reason: ir.FinishReason) -> bytes:
        self._done = True
        delta = _DeltaBody(stop_reason=_stop_out(reason, self._saw_tool), stop_sequence=None)
        ev = _EvMessageDelta(type="message_delta", delta=delta, usage=_usage_out(self._usage))
        return (
            self._close()
            + frame(_ENC.encode(ev), "message_delta")
            + b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )

    def close(self) -> bytes:
        if self._done:
            return b""
        out = b"" if self._started else self._start(None)
        return out + self._finish("stop")


# --------------------------------------------------------------------------------------------- codec


class ClaudeCodec:
    """Anthropic Messages ↔ IR."""

    name = NAME

    def decode_request(self, body: bytes) -> ir.Request:
        return _decode_request(body)

    def encode_request(self, req: ir.Request) -> bytes:
        return _encode_request(req)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        return _decode_response(body)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return _encode_response(resp)

    def stream_decoder(self, req: ir.Request | None = None) -> ClaudeStreamDecoder:
        return ClaudeStreamDecoder()

    def stream_encoder(self, req: ir.Request) -> ClaudeStreamEncoder:
        return ClaudeStreamEncoder(req)


CODEC: Final = ClaudeCodec()
