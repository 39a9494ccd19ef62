"""OpenAI Responses wire types (msgspec Structs), their module-level (de)coders and the stream event payloads."""

from __future__ import annotations

from typing import Any, Final

import msgspec

NAME: Final = "openai-response"
_DIALECT: Final = NAME


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
    """Non-stream Codex bodies may be the ``response.completed`` event itself (the backend only streams, so a
    collected answer is its final event)."""

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
