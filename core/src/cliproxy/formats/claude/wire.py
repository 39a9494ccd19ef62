"""Anthropic Messages wire types (msgspec Structs) and their module-level (de)coders."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

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
_EMPTY_OBJECT: Final = msgspec.Raw(b"{}")
