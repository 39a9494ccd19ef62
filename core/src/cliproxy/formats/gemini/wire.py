"""Gemini ``generateContent`` wire types (msgspec Structs, camelCase on the wire) and their (de)coders."""

from __future__ import annotations

from typing import Any, Final

import msgspec

NAME: Final = "gemini"
_DIALECT: Final = NAME


#: Sentinel Gemini 3 accepts in place of a real ``thoughtSignature`` on replayed function calls (history from
#: other dialects has no signatures, and Gemini 3 rejects unsigned calls).
SKIP_THOUGHT_SIGNATURE: Final = "skip_thought_signature_validator"

DEFAULT_SAFETY_SETTINGS: Final[list[dict[str, str]]] = [
    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_NONE"},
]


# --------------------------------------------------------------------------------------------- wire types


class Blob(msgspec.Struct, rename="camel", omit_defaults=True):
    mime_type: str | None = None
    data: str | None = None


class FileData(msgspec.Struct, rename="camel", omit_defaults=True):
    mime_type: str | None = None
    file_uri: str | None = None


class FunctionCall(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class FunctionResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str = ""
    response: dict[str, Any] | None = None
    id: str | None = None
    #: Multimodal function results (Gemini 3): ``[{"inlineData": ...}]``.
    parts: list[dict[str, Any]] | None = None


class Part(msgspec.Struct, rename="camel", omit_defaults=True):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    executable_code: dict[str, Any] | None = None
    code_execution_result: dict[str, Any] | None = None


class Content(msgspec.Struct, rename="camel", omit_defaults=True):
    role: str | None = None
    parts: list[Part] = []


class FunctionDeclaration(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    parameters_json_schema: dict[str, Any] | None = None


class FunctionCallingConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    mode: str | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    thinking_budget: int | None = None
    include_thoughts: bool | None = None
    thinking_level: str | None = None


class GenerationConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: list[str] | None = None
    candidate_count: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None


class GeminiRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    """Typed view of a request body; ``tools`` stay raw because non-function tools pass through as-is."""

    model: str | None = None
    contents: list[Content] = []
    system_instruction: Content | None = None
    tools: list[dict[str, Any]] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None
    safety_settings: list[dict[str, Any]] | None = None


class UsageMetadata(msgspec.Struct, rename="camel", omit_defaults=True):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    total_token_count: int | None = None


class Candidate(msgspec.Struct, rename="camel", omit_defaults=True):
    content: Content | None = None
    finish_reason: str | None = None
    index: int | None = None


class PromptFeedback(msgspec.Struct, rename="camel", omit_defaults=True):
    block_reason: str | None = None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: int = 0
    message: str = ""
    status: str = ""


class GenerateContentResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    candidates: list[Candidate] | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    create_time: str | None = None
    prompt_feedback: PromptFeedback | None = None
    #: Only present on in-band stream errors.
    error: ErrorBody | None = None


class OutContent(msgspec.Struct):
    """Output-side content: ``parts`` is always written, even empty, because clients index into it."""

    role: str
    parts: list[Part]


class OutCandidate(msgspec.Struct, rename="camel", omit_defaults=True):
    content: OutContent
    index: int
    finish_reason: str | None = None


class OutResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    """A GenerateContentResponse as this proxy writes it (non-stream body or one stream chunk)."""

    candidates: list[OutCandidate]
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    create_time: str | None = None


class _CountTokensResponse(msgspec.Struct, rename="camel"):
    total_tokens: int


_encoder: Final = msgspec.json.Encoder()
_encode: Final = _encoder.encode
_decode_any: Final = msgspec.json.decode
_response_decoder: Final = msgspec.json.Decoder(GenerateContentResponse)
_count_decoder: Final = msgspec.json.Decoder(_CountTokensResponse)


def _dumps(value: Any) -> str:
    return _encode(value).decode()


def _ext(obj: Any) -> dict[str, Any]:
    value = obj.ext.get(_DIALECT) if obj.ext else None
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------------------- request: wire → IR


class _CLIChunk(msgspec.Struct):
    response: GenerateContentResponse | None = None
    error: ErrorBody | None = None


_cli_chunk_decoder: Final = msgspec.json.Decoder(_CLIChunk)
