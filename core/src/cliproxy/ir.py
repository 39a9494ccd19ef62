"""Canonical intermediate representation shared by every wire-format codec.

Each dialect (OpenAI chat, OpenAI Responses, Claude Messages, Gemini, Gemini CLI) has one codec that maps
its wire format to and from these types, so N dialects need N codecs instead of N*N translators. The IR is a
superset of what the dialects can express; anything dialect-specific that another dialect cannot carry
travels in ``ext`` dictionaries keyed by dialect name so a same-dialect round trip loses nothing.

Conventions:
    * Tool-call arguments and JSON schemas stay as raw JSON text / plain dicts: never re-serialised needlessly.
    * Images keep their base64 text, so data URLs map to Gemini ``inlineData`` without decoding.
    * Finish reasons use the OpenAI vocabulary: ``stop``, ``length``, ``tool_calls``, ``content_filter``, ``error``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "BlockStop",
    "Error",
    "Event",
    "Finish",
    "ImagePart",
    "Message",
    "Part",
    "ReasoningConfig",
    "ReasoningDelta",
    "ReasoningPart",
    "Request",
    "Response",
    "ResponseFormat",
    "Start",
    "TextDelta",
    "TextPart",
    "Tool",
    "ToolArgsDelta",
    "ToolCallPart",
    "ToolCallStart",
    "ToolChoice",
    "ToolResultPart",
    "Usage",
    "UsageEvent",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


# --------------------------------------------------------------------------------------------- parts


class TextPart(msgspec.Struct, tag="text", omit_defaults=True):
    text: str
    #: Claude prompt-caching marker, e.g. ``{"type": "ephemeral"}``; dropped by dialects without caching.
    cache_control: dict[str, Any] | None = None
    ext: dict[str, Any] = {}


class ImagePart(msgspec.Struct, tag="image", omit_defaults=True):
    """An image or other inline media (PDF, audio) either as base64 ``data`` or as a ``url``."""

    media_type: str = "image/png"
    data: str | None = None
    url: str | None = None
    #: OpenAI ``image_url.detail``.
    detail: str | None = None
    cache_control: dict[str, Any] | None = None
    ext: dict[str, Any] = {}


class ToolCallPart(msgspec.Struct, tag="tool_call", omit_defaults=True):
    id: str
    name: str
    #: Raw JSON text of the arguments object (``"{}"`` when empty).
    arguments: str = "{}"
    #: Gemini ``thoughtSignature`` attached to a function call (required when echoing history back).
    signature: str | None = None
    ext: dict[str, Any] = {}


class ToolResultPart(msgspec.Struct, tag="tool_result", omit_defaults=True):
    call_id: str
    #: Function name; Gemini needs it for ``functionResponse`` and it is recovered from history when absent.
    name: str | None = None
    content: list[TextPart | ImagePart] = []
    is_error: bool = False
    cache_control: dict[str, Any] | None = None
    ext: dict[str, Any] = {}


class ReasoningPart(msgspec.Struct, tag="reasoning", omit_defaults=True):
    text: str = ""
    #: Claude thinking ``signature`` / Gemini ``thoughtSignature``.
    signature: str | None = None
    #: Claude ``redacted_thinking.data`` or OpenAI Responses ``encrypted_content``.
    encrypted: str | None = None
    #: Which dialect produced ``signature``/``encrypted``; opaque blobs are only sent back to their own family.
    origin: str | None = None
    ext: dict[str, Any] = {}


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ReasoningPart


class Message(msgspec.Struct, omit_defaults=True):
    """One conversation turn. ``system`` turns only appear where a dialect allows mid-conversation system text."""

    role: Literal["system", "user", "assistant", "tool"]
    parts: list[Part] = []
    #: OpenAI ``name`` on a message.
    name: str | None = None
    ext: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------- request


class Tool(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    #: JSON schema of the arguments object, as received (cleaned per target dialect by its codec).
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None
    ext: dict[str, Any] = {}


class ToolChoice(msgspec.Struct, omit_defaults=True):
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    #: Set when ``mode == "tool"``.
    name: str | None = None


class ReasoningConfig(msgspec.Struct, omit_defaults=True):
    """Thinking controls. Codecs convert between ``effort`` and ``budget`` with ``cliproxy.thinking``."""

    #: ``none``, ``minimal``, ``low``, ``medium``, ``high`` (``auto`` = dynamic budget).
    effort: str | None = None
    #: Token budget; ``-1`` = dynamic, ``0`` = disabled.
    budget: int | None = None
    #: Whether thought text should be returned to the client.
    include_thoughts: bool | None = None
    #: OpenAI Responses ``reasoning.summary`` (``auto``, ``concise``, ``detailed``).
    summary: str | None = None


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


class Request(msgspec.Struct, kw_only=True, omit_defaults=True):
    model: str
    #: System prompt blocks, in order (Claude ``system``, Gemini ``systemInstruction``, OpenAI leading system).
    system: list[TextPart] = []
    messages: list[Message] = []
    stream: bool = False
    tools: list[Tool] = []
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = []
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    candidate_count: int | None = None
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    #: OpenAI ``stream_options.include_usage``.
    include_usage: bool | None = None
    #: End-user id (OpenAI ``user``, Claude ``metadata.user_id``).
    user: str | None = None
    ext: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------- response


class Usage(msgspec.Struct, omit_defaults=True):
    input_tokens: int = 0
    output_tokens: int = 0
    #: Input tokens served from cache (OpenAI cached_tokens, Claude cache_read, Gemini cachedContentTokenCount).
    cached_tokens: int = 0
    #: Claude cache_creation_input_tokens.
    cache_creation_tokens: int = 0
    #: Reasoning tokens, included in ``output_tokens``.
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Response(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    model: str
    created: int = 0
    #: Assistant output, in order: reasoning, text, tool calls.
    parts: list[Part] = []
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    ext: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------- stream events


class Start(msgspec.Struct, tag="start"):
    """First event of every stream."""

    id: str
    model: str
    created: int = 0


class TextDelta(msgspec.Struct, tag="text"):
    text: str


class ReasoningDelta(msgspec.Struct, tag="reasoning"):
    text: str = ""
    #: Signature for the reasoning emitted so far; may arrive alone, after the text.
    signature: str | None = None
    encrypted: str | None = None
    origin: str | None = None


class ToolCallStart(msgspec.Struct, tag="tool_start"):
    #: Zero-based position of this tool call within the response (OpenAI ``tool_calls[].index``).
    index: int
    id: str
    name: str
    signature: str | None = None


class ToolArgsDelta(msgspec.Struct, tag="tool_args"):
    index: int
    json: str


class BlockStop(msgspec.Struct, tag="block_stop"):
    """The current content block (text, reasoning or tool call) is complete.

    Optional for decoders: encoders close open blocks themselves when the block kind changes.
    """


class UsageEvent(msgspec.Struct, tag="usage"):
    usage: Usage


class Finish(msgspec.Struct, tag="finish"):
    """The model finished; encoders emit their terminal events (``[DONE]``, ``message_stop`` ...) on it."""

    reason: FinishReason = "stop"


class Error(msgspec.Struct, tag="error"):
    """A failure after streaming began: encoders turn it into the dialect's in-band error event."""

    status: int
    message: str
    #: Error category (``ErrorKind`` of :mod:`cliproxy.errors`): ``rate_limit``, ``server``, ``overloaded`` ...
    kind: str = "server"


Event = Start | TextDelta | ReasoningDelta | ToolCallStart | ToolArgsDelta | BlockStop | UsageEvent | Finish | Error
