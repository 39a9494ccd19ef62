"""OpenAI Chat Completions wire types (msgspec Structs) and their module-level (de)coders.

Structs used for *output* give every field that must always appear no default (or an ``UNSET`` default),
because ``omit_defaults`` would otherwise drop values such as ``"index": 0``.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

NAME: Final = "openai"
DONE_FRAME: Final = b"data: [DONE]\n\n"


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
    #: Responses-API shape ``{"type":"function","name":...}``, which clients mixing the two APIs send.
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
