"""Gemini ``generateContent`` codec (Generative Language v1beta REST JSON).

Google speaks camelCase on the wire but its SDKs and several clients send snake_case
(``system_instruction``, ``inline_data``, ``function_call``), and the REST front end accepts both, so requests
are normalised to camelCase before typed decoding. Responses from Google are always camelCase and decode
straight into Structs.

Gemini has no tool-call ids (older models) and needs the function *name* on every ``functionResponse``, so ids
are minted here and names are recovered from the call history. Tool schemas go through
:func:`clean_schema_for_gemini` because Gemini rejects many JSON-schema keywords other dialects use freely
(spec §4.0.7, §7.3).
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from .. import ir
from ..errors import kind_for_status
from ..sse import SSEEvent, frame
from ..thinking import effort_to_budget
from .base import CodecError

__all__ = [
    "CODEC",
    "DEFAULT_SAFETY_SETTINGS",
    "SKIP_THOUGHT_SIGNATURE",
    "GeminiCodec",
    "GeminiStreamDecoder",
    "GeminiStreamEncoder",
    "clean_schema_for_gemini",
    "restore_function_name",
    "sanitize_function_name",
]

#: Sentinel Gemini 3 accepts in place of a real ``thoughtSignature`` on replayed function calls (spec §4.0.4).
SKIP_THOUGHT_SIGNATURE: Final = "skip_thought_signature_validator"

DEFAULT_SAFETY_SETTINGS: Final[list[dict[str, str]]] = [
    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_NONE"},
]

_DIALECT: Final = "gemini"


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


class _ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class _CountTokensResponse(msgspec.Struct, rename="camel"):
    total_tokens: int = 0


_encoder: Final = msgspec.json.Encoder()
_encode: Final = _encoder.encode
_decode_any: Final = msgspec.json.decode
_response_decoder: Final = msgspec.json.Decoder(GenerateContentResponse)
_count_decoder: Final = msgspec.json.Decoder(_CountTokensResponse)


def _dumps(value: Any) -> str:
    return _encode(value).decode()


# ------------------------------------------------------------------------------------------- snake_case input

#: Keys whose values are user data (schemas, arguments, labels): their own keys must never be renamed.
_OPAQUE_KEYS: Final = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseSchema",
        "responseJsonSchema",
        "labels",
        "partialArgs",
    }
)
_SNAKE_KEY: Final = re.compile(rb'"[a-z]+(?:_[a-z0-9]+)+"\s*:')


def _camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _camelize(value: Any) -> Any:
    """Rename snake_case keys to camelCase everywhere except inside opaque user data."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            ck = _camel(k)
            out[ck] = v if ck in _OPAQUE_KEYS else _camelize(v)
        return out
    if isinstance(value, list):
        return [_camelize(v) for v in value]
    return value


# --------------------------------------------------------------------------------------- JSON schema cleaning

#: Keywords Gemini's function-declaration schema understands; everything else is removed or turned into a
#: hint.
_KEEP_KEYWORDS: Final = frozenset(
    {
        "type",
        "description",
        "enum",
        "properties",
        "required",
        "items",
        "minimum",
        "maximum",
        "minProperties",
        "maxProperties",
        "propertyOrdering",
    }
)
#: Constraints Gemini rejects but the model should still know about: moved into ``description``.
_HINT_KEYWORDS: Final = (
    "minLength",
    "maxLength",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "format",
    "default",
    "examples",
)
_MAX_REF_DEPTH: Final = 8
_JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array"})


def clean_schema_for_gemini(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON schema into the subset Gemini function declarations accept (spec §4.0.7 item 2).

    Gemini rejects ``$ref``/``$defs``, ``additionalProperties``, ``const``, type arrays, non-string enums and
    most validation keywords, so: local ``$ref`` are inlined (cycles and unresolvable refs become a
    description hint), ``allOf`` is merged, ``anyOf``/``oneOf`` keep their strongest branch, ``["T","null"]``
    becomes ``T``, ``const`` becomes a one-value ``enum``, enums become strings, constraints move into
    ``description`` and ``required`` only names real properties. Property *names* are never touched. The input
    is not modified.
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"#/{key}/{name}": sub for name, sub in found.items()})
    out = _clean_node(schema, defs, ())
    if "type" not in out:
        out["type"] = "object"
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def _hint(node: dict[str, Any], text: str) -> None:
    desc = node.get("description")
    node["description"] = f"{desc} ({text})" if isinstance(desc, str) and desc else text


def _clean_node(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        # ``true``/``{}`` schemas: anything goes; Gemini needs a concrete type, string is the least
        # surprising.
        return {"type": "string"} if node is True else {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if target is None or ref in seen or len(seen) >= _MAX_REF_DEPTH:
            unresolved = _clean_node(rest, defs, seen)
            _hint(unresolved, f"see {ref.rsplit('/', 1)[-1]}")
            if "type" not in unresolved:
                unresolved["type"] = "object"
            return unresolved
        # Sibling keywords (description, ...) override the referenced schema's.
        merged = {**target, **rest} if isinstance(target, dict) else rest
        return _clean_node(merged, defs, (*seen, ref))

    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list):
        for branch in all_of:
            if isinstance(branch, dict):
                node = _merge_all_of(node, _resolve(branch, defs, seen))
    out: dict[str, Any] = {}
    hints: list[str] = []

    for key in ("anyOf", "oneOf"):
        branches = node.pop(key, None)
        if isinstance(branches, list) and branches:
            chosen, alternatives = _pick_branch([_resolve(b, defs, seen) for b in branches])
            if chosen is not None:
                for k, v in chosen.items():
                    if k == "description" and "description" in node:
                        continue
                    node.setdefault(k, v)
            if len(alternatives) > 1:
                hints.append("accepts: " + " | ".join(alternatives))

    typ = node.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        if len(non_null) > 1:
            hints.append("accepts: " + " | ".join(str(t) for t in non_null))
        typ = non_null[0] if non_null else "string"
    if isinstance(typ, str):
        typ = typ.lower()
        if typ == "null":  # Gemini has no null type; the value can only ever be absent
            typ = "string"
        if typ in _JSON_TYPES:
            out["type"] = typ

    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]
    enum = node.get("enum")
    if isinstance(enum, list):
        values = [v for v in enum if v is not None]
        if values and not all(isinstance(v, bool) for v in values):
            out["enum"] = [v if isinstance(v, str) else _dumps(v) for v in values]
            out["type"] = "string"

    desc = node.get("description")
    if isinstance(desc, str) and desc:
        out["description"] = desc
    for key in ("minimum", "maximum", "minProperties", "maxProperties"):
        val = node.get(key)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            out[key] = val
    for key in _HINT_KEYWORDS:
        if key in node:
            hints.append(f"{key}: {_dumps(node[key])}")
    if node.get("additionalProperties") is False:
        hints.append("no additional properties")

    props = node.get("properties")
    if isinstance(props, dict):
        out["properties"] = {name: _clean_node(sub, defs, seen) for name, sub in props.items()}
        req = node.get("required")
        if isinstance(req, list):
            kept = [r for r in req if isinstance(r, str) and r in out["properties"]]
            if kept:
                out["required"] = list(dict.fromkeys(kept))
        order = node.get("propertyOrdering")
        if isinstance(order, list):
            out["propertyOrdering"] = [p for p in order if p in out["properties"]]
        out.setdefault("type", "object")
    items = node.get("items")
    if isinstance(items, list):  # tuple form: Gemini only knows a single item schema
        items = items[0] if items else {}
    if isinstance(items, dict) or items is True:
        out["items"] = _clean_node(items, defs, seen) or {"type": "string"}
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}
    if hints:
        _hint(out, "; ".join(hints))
    return out


def _resolve(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    """Follow a local ``$ref`` one level so union/allOf logic sees the real branch."""
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in defs and ref not in seen and isinstance(defs[ref], dict):
        return {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _merge_all_of(base: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in branch.items():
        if k == "properties" and isinstance(v, dict):
            out["properties"] = {**(out.get("properties") or {}), **v}
        elif k == "required" and isinstance(v, list):
            out["required"] = [*(out.get("required") or []), *v]
        else:
            out.setdefault(k, v)
    return out


def _branch_type(branch: dict[str, Any]) -> str:
    t = branch.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if isinstance(t, str):
        return t
    if "properties" in branch:
        return "object"
    if "items" in branch:
        return "array"
    if "const" in branch or "enum" in branch:
        return "string"
    return "any"


_BRANCH_RANK: Final = {
    "object": 0,
    "array": 1,
    "string": 2,
    "number": 3,
    "integer": 4,
    "boolean": 5,
    "any": 6,
}


def _pick_branch(branches: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """The most informative non-null branch (objects first) plus the alternative types for the hint."""
    candidates = [b for b in branches if _branch_type(b) != "null"]
    if not candidates:
        return None, []
    types = list(dict.fromkeys(_branch_type(b) for b in candidates))
    chosen = min(candidates, key=lambda b: _BRANCH_RANK.get(_branch_type(b), 7))
    return chosen, types


def _gemini_schema_to_json_schema(node: Any) -> Any:
    """Gemini ``parameters`` use OpenAPI upper-case types and ``nullable``; others want JSON schema."""
    if isinstance(node, list):
        return [_gemini_schema_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: _gemini_schema_to_json_schema(sub) for name, sub in v.items()}
        elif k == "type" and isinstance(v, str):
            out[k] = v.lower()
        elif k in ("items", "anyOf", "oneOf", "allOf"):
            out[k] = _gemini_schema_to_json_schema(v)
        elif k != "nullable":
            out[k] = v
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# --------------------------------------------------------------------------------------------- names and ids

_VALID_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_INVALID_CHARS: Final = re.compile(r"[^A-Za-z0-9_.:-]")


def sanitize_function_name(name: str) -> str:
    """Deterministically map a tool name onto Gemini's allowed pattern (spec §4.0.7 item 3).

    Deterministic, so a response can be mapped back with :func:`restore_function_name` from the request's
    tools alone.
    """
    if _VALID_NAME.match(name):
        return name
    out = _INVALID_CHARS.sub("_", name) or "_"
    if not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    if len(out) > 64:
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        out = out[:55] + "_" + digest
    return out


def restore_function_name(name: str, tools: Iterable[ir.Tool]) -> str:
    """The client's original tool name for a (possibly sanitised) name Gemini answered with."""
    for tool in tools:
        if tool.name == name:
            return name
        if sanitize_function_name(tool.name) == name:
            return tool.name
    return name


def _name_map(req: ir.Request | None) -> dict[str, str]:
    if req is None:
        return {}
    out: dict[str, str] = {}
    for tool in req.tools:
        clean = sanitize_function_name(tool.name)
        if clean != tool.name:
            out[clean] = tool.name
    return out


def _mint_id(*seed: object) -> str:
    """Deterministic ``call_<24 hex>`` id: same history ⇒ same ids, so retries and caches stay stable."""
    raw = "\x1f".join(str(s) for s in seed).encode()
    return "call_" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def _random_id() -> str:
    return "call_" + secrets.token_hex(12)


# --------------------------------------------------------------------------------------------- small mappings

_FILTER_REASONS: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
_TO_NATIVE: Final[dict[str, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
_GRPC_STATUS: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _finish_reason(native: str | None, saw_tool_call: bool) -> ir.FinishReason:
    """Spec §4.0.5 (recommended): a function call anywhere in the answer wins over ``STOP``."""
    if saw_tool_call:
        return "tool_calls"
    if native is None or native in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        return "stop"
    if native == "MAX_TOKENS":
        return "length"
    if native in _FILTER_REASONS:
        return "content_filter"
    if native in ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"):
        return "error"
    return "stop"


def _usage_to_ir(u: UsageMetadata) -> ir.Usage:
    """``candidatesTokenCount`` excludes thoughts; IR ``output_tokens`` includes reasoning (spec §4.0.6)."""
    thoughts = u.thoughts_token_count or 0
    return ir.Usage(
        input_tokens=(u.prompt_token_count or 0) + (u.tool_use_prompt_token_count or 0),
        output_tokens=(u.candidates_token_count or 0) + thoughts,
        cached_tokens=u.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def _usage_from_ir(u: ir.Usage) -> UsageMetadata:
    reasoning = min(u.reasoning_tokens, u.output_tokens)
    return UsageMetadata(
        prompt_token_count=u.input_tokens,
        candidates_token_count=u.output_tokens - reasoning,
        thoughts_token_count=reasoning or None,
        cached_content_token_count=u.cached_tokens or None,
        total_token_count=u.input_tokens + u.output_tokens,
    )


def _parse_time(value: str | None) -> int:
    if not value or len(value) < 19:
        return 0
    try:
        return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0


def _format_time(ts: int) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts > 0 else None


def _args_text(args: dict[str, Any] | None) -> str:
    return _dumps(args) if args else "{}"


def _args_object(text: str) -> dict[str, Any]:
    """Gemini needs an args *object*; invalid or non-object JSON degrades to ``{}`` rather than a 400."""
    if not text or text.isspace():
        return {}
    try:
        value = _decode_any(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); spec §4.0.2."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep:
        return None
    mime, _, enc = head.partition(";")
    if enc != "base64":
        return None
    return mime or "application/octet-stream", data


def _ext(obj: Any) -> dict[str, Any]:
    value = obj.ext.get(_DIALECT) if obj.ext else None
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------------------- request: wire → IR


_KNOWN_TOP: Final = frozenset(
    {"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}
)
_KNOWN_GEN: Final = frozenset(GenerationConfig.__struct_encode_fields__)


def _normalise_body(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return _camelize(raw)  # type: ignore[no-any-return]
    try:
        obj = _decode_any(raw)
    except msgspec.DecodeError as exc:
        raise CodecError(f"invalid JSON body: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("request body must be a JSON object")
    return _camelize(obj) if _SNAKE_KEY.search(raw) else obj  # type: ignore[no-any-return]


def decode_request_dict(body: dict[str, Any]) -> ir.Request:
    """Decode an already-parsed Gemini body (snake_case tolerated); shared with the Gemini-CLI codec."""
    norm = _camelize(body)
    return _decode_normalised(norm)


def _decode_normalised(norm: dict[str, Any]) -> ir.Request:
    try:
        g = msgspec.convert(norm, GeminiRequest)
    except msgspec.ValidationError as exc:
        raise CodecError(str(exc)) from None
    ext: dict[str, Any] = {}
    extra = {k: v for k, v in norm.items() if k not in _KNOWN_TOP}
    if extra:
        ext["extra"] = extra
    if g.safety_settings is not None:
        ext["safetySettings"] = g.safety_settings

    model = g.model or ""
    if model.startswith("models/"):
        model = model[7:]
    req = ir.Request(model=model)
    if g.system_instruction is not None:
        req.system = [ir.TextPart(text=p.text) for p in g.system_instruction.parts if p.text]
    req.messages = _decode_contents(g.contents)
    _decode_tools(g, req, ext)
    gen_raw = norm.get("generationConfig")
    if g.generation_config is not None:
        _decode_generation_config(g.generation_config, req, ext)
        if isinstance(gen_raw, dict):
            gen_extra = {k: v for k, v in gen_raw.items() if k not in _KNOWN_GEN}
            if gen_extra:
                ext["generationConfig"] = gen_extra
    if ext:
        req.ext = {_DIALECT: ext}
    return req


def _decode_contents(contents: list[Content]) -> list[ir.Message]:
    messages: list[ir.Message] = []
    #: Calls still waiting for their response, FIFO: (name, id).
    pending: list[tuple[str, str]] = []
    prev_role = ""
    for ci, content in enumerate(contents):
        role = content.role
        if role in ("function", "tool"):
            role = "user"
        elif role not in ("user", "model"):
            # Spec §4.0.1: repair missing/invalid roles by alternation.
            role = "model" if prev_role == "user" else "user"
        prev_role = role
        if role == "model":
            parts: list[ir.Part] = []
            for pi, part in enumerate(content.parts):
                decoded = _decode_model_part(part, ci, pi)
                if decoded is None:
                    continue
                if isinstance(decoded, ir.ToolCallPart):
                    pending.append((decoded.name, decoded.id))
                parts.append(decoded)
            if parts:
                messages.append(ir.Message(role="assistant", parts=parts))
            continue
        results: list[ir.Part] = []
        user_parts: list[ir.Part] = []
        for pi, part in enumerate(content.parts):
            fr = part.function_response
            if fr is not None:
                results.append(_decode_function_response(fr, pending, ci, pi))
                continue
            decoded_part = _decode_user_part(part)
            if decoded_part is not None:
                user_parts.append(decoded_part)
        if results:
            messages.append(ir.Message(role="tool", parts=results))
        if user_parts:
            messages.append(ir.Message(role="user", parts=user_parts))
    return messages


def _decode_media(part: Part) -> ir.ImagePart | None:
    if part.inline_data is not None:
        blob = part.inline_data
        return ir.ImagePart(media_type=blob.mime_type or "application/octet-stream", data=blob.data or "")
    if part.file_data is not None:
        fd = part.file_data
        return ir.ImagePart(media_type=fd.mime_type or "application/octet-stream", url=fd.file_uri)
    return None


def _decode_user_part(part: Part) -> ir.Part | None:
    if part.text is not None and not part.thought:
        return ir.TextPart(text=part.text)
    return _decode_media(part)


def _decode_model_part(part: Part, ci: int, pi: int) -> ir.Part | None:
    sig = part.thought_signature
    fc = part.function_call
    if fc is not None:
        ext = {_DIALECT: {"id": fc.id}} if fc.id else {}
        return ir.ToolCallPart(
            id=fc.id or _mint_id(ci, pi, fc.name),
            name=fc.name,
            arguments=_args_text(fc.args),
            signature=sig,
            ext=ext,
        )
    if part.thought:
        return ir.ReasoningPart(text=part.text or "", signature=sig, origin=_DIALECT)
    if part.text:
        return ir.TextPart(text=part.text, ext={_DIALECT: {"thoughtSignature": sig}} if sig else {})
    if sig:
        return ir.ReasoningPart(text="", signature=sig, origin=_DIALECT)
    if part.text is not None:
        return ir.TextPart(text="")
    return _decode_media(part)


_RESULT_KEYS: Final = ("result", "output", "content")


def _decode_function_response(
    fr: FunctionResponse, pending: list[tuple[str, str]], ci: int, pi: int
) -> ir.ToolResultPart:
    # An explicit id that names a call wins; otherwise per-name FIFO (spec §4.0.8 recommended), then plain
    # FIFO. Gemini CLI invents its own response ids for calls that had none, so an unknown id still matches by
    # name, and the client's id is kept in ext for the way back.
    match = next((i for i, (_, cid) in enumerate(pending) if fr.id and cid == fr.id), None)
    if match is None:
        match = next((i for i, (n, _) in enumerate(pending) if n == fr.name), None)
    if match is None and pending:
        match = 0
    call_id = pending.pop(match)[1] if match is not None else fr.id or _mint_id("response", ci, pi, fr.name)
    resp = fr.response or {}
    is_error = False
    if len(resp) == 1 and "error" in resp:
        payload: Any = resp["error"]
        is_error = True
    elif len(resp) == 1 and next(iter(resp)) in _RESULT_KEYS:
        payload = next(iter(resp.values()))
    else:
        payload = resp
    content: list[ir.TextPart | ir.ImagePart] = [
        ir.TextPart(text=payload if isinstance(payload, str) else _dumps(payload))
    ]
    for extra in fr.parts or ():
        blob = extra.get("inlineData") or extra.get("inline_data")
        if isinstance(blob, dict):
            content.append(
                ir.ImagePart(
                    media_type=blob.get("mimeType") or blob.get("mime_type") or "application/octet-stream",
                    data=blob.get("data") or "",
                )
            )
    ext: dict[str, Any] = {"response": resp}
    if fr.id:
        ext["id"] = fr.id
    return ir.ToolResultPart(
        call_id=call_id, name=fr.name or None, content=content, is_error=is_error, ext={_DIALECT: ext}
    )


def _decode_tools(g: GeminiRequest, req: ir.Request, ext: dict[str, Any]) -> None:
    passthrough: list[dict[str, Any]] = []
    for tool in g.tools or ():
        decls = tool.get("functionDeclarations")
        if isinstance(decls, list):
            for raw in decls:
                try:
                    fd = msgspec.convert(raw, FunctionDeclaration)
                except msgspec.ValidationError as exc:
                    raise CodecError(f"tools.functionDeclarations: {exc}") from None
                if fd.parameters_json_schema is not None:
                    schema: dict[str, Any] | None = fd.parameters_json_schema
                elif fd.parameters is not None:
                    schema = _gemini_schema_to_json_schema(fd.parameters)
                else:
                    schema = None
                req.tools.append(ir.Tool(name=fd.name, description=fd.description, parameters=schema))
        rest = {k: v for k, v in tool.items() if k != "functionDeclarations"}
        if rest:
            passthrough.append(rest)
    if passthrough:
        ext["tools"] = passthrough
    fcc = g.tool_config.function_calling_config if g.tool_config else None
    if fcc is not None and fcc.mode:
        mode = fcc.mode.upper()
        names = fcc.allowed_function_names or []
        if mode == "NONE":
            req.tool_choice = ir.ToolChoice(mode="none")
        elif mode == "ANY" and len(names) == 1:
            req.tool_choice = ir.ToolChoice(mode="tool", name=names[0])
        elif mode == "ANY":
            req.tool_choice = ir.ToolChoice(mode="required")
        else:
            req.tool_choice = ir.ToolChoice(mode="auto")
        if len(names) > 1 or mode not in ("AUTO", "ANY", "NONE"):
            ext["functionCallingConfig"] = msgspec.to_builtins(fcc)


def _decode_generation_config(gc: GenerationConfig, req: ir.Request, ext: dict[str, Any]) -> None:
    req.max_tokens = gc.max_output_tokens
    req.temperature = gc.temperature
    req.top_p = gc.top_p
    if gc.top_k is not None:
        req.top_k = int(gc.top_k)
    req.stop = gc.stop_sequences or []
    req.candidate_count = gc.candidate_count
    req.seed = gc.seed
    req.presence_penalty = gc.presence_penalty
    req.frequency_penalty = gc.frequency_penalty
    mime = gc.response_mime_type
    if mime == "application/json" or gc.response_json_schema is not None or gc.response_schema is not None:
        if gc.response_json_schema is not None:
            req.response_format = ir.ResponseFormat(type="json_schema", schema=gc.response_json_schema)
        elif gc.response_schema is not None:
            schema = _gemini_schema_to_json_schema(gc.response_schema)
            req.response_format = ir.ResponseFormat(type="json_schema", schema=schema)
        else:
            req.response_format = ir.ResponseFormat(type="json_object")
    elif mime is not None:
        ext["responseMimeType"] = mime
    tc = gc.thinking_config
    if tc is not None:
        req.reasoning = ir.ReasoningConfig(
            budget=tc.thinking_budget,
            include_thoughts=tc.include_thoughts,
            effort=tc.thinking_level.lower() if tc.thinking_level else None,
        )


# ----------------------------------------------------------------------------------------- request: IR → wire


def _function_names_by_id(messages: list[ir.Message]) -> dict[str, str]:
    out: dict[str, str] = {}
    for msg in messages:
        for part in msg.parts:
            if isinstance(part, ir.ToolCallPart):
                out[part.id] = part.name
    return out


def _name_from_id(call_id: str) -> str | None:
    """Reference ``<name>-<unixNanos>`` ids carry the name; real ids (``toolu_…``, ``call_…``) do not."""
    head, sep, tail = call_id.rpartition("-")
    return head if sep and head and tail.isdigit() else None


def _media_part(part: ir.ImagePart) -> Part | None:
    if part.data is not None:
        return Part(inline_data=Blob(mime_type=part.media_type, data=part.data))
    if part.url:
        parsed = _parse_data_url(part.url)
        if parsed is not None:
            return Part(inline_data=Blob(mime_type=parsed[0], data=parsed[1]))
        return Part(file_data=FileData(mime_type=part.media_type, file_uri=part.url))
    return None


def _result_payload(part: ir.ToolResultPart) -> tuple[dict[str, Any], list[Part]]:
    """``{"result": ...}``: JSON stays structured, text stays a string, images become extra parts (§7.20)."""
    media: list[Part] = []
    texts: list[str] = []
    for item in part.content:
        if isinstance(item, ir.TextPart):
            texts.append(item.text)
        else:
            mp = _media_part(item)
            if mp is not None:
                media.append(mp)
    original = _ext(part).get("response")
    if isinstance(original, dict):
        return original, media
    text = "\n".join(texts)
    value: Any = text
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            value = _decode_any(text)
        except msgspec.DecodeError:
            value = text
    return ({"error": value} if part.is_error else {"result": value}), media


def _encode_contents(req: ir.Request, system_extra: list[Part]) -> list[Content]:
    names = _function_names_by_id(req.messages)
    contents: list[Content] = []
    for msg in req.messages:
        if msg.role == "system":
            system_extra.extend(Part(text=p.text) for p in msg.parts if isinstance(p, ir.TextPart))
            continue
        role = "model" if msg.role == "assistant" else "user"
        parts: list[Part] = []
        signed_call = False
        for part in msg.parts:
            if isinstance(part, ir.TextPart):
                sig = _ext(part).get("thoughtSignature") if role == "model" else None
                parts.append(Part(text=part.text, thought_signature=sig))
            elif isinstance(part, ir.ImagePart):
                mp = _media_part(part)
                if mp is not None:
                    parts.append(mp)
            elif isinstance(part, ir.ToolCallPart):
                if role != "model":
                    continue
                sig = part.signature
                if sig:
                    signed_call = True
                elif not signed_call:
                    # Gemini 3 rejects replayed calls without a signature; only the
                    # first parallel call carries
                    # one, so calls after a genuinely signed one stay bare (spec §4.0.4, §7.14).
                    sig = SKIP_THOUGHT_SIGNATURE
                parts.append(
                    Part(
                        function_call=FunctionCall(
                            name=sanitize_function_name(part.name),
                            args=_args_object(part.arguments),
                            id=_ext(part).get("id"),
                        ),
                        thought_signature=sig,
                    )
                )
            elif isinstance(part, ir.ToolResultPart):
                name = part.name or names.get(part.call_id) or _name_from_id(part.call_id) or "unknown"
                payload, media = _result_payload(part)
                parts.append(
                    Part(
                        function_response=FunctionResponse(
                            name=sanitize_function_name(name),
                            response=payload,
                            id=_ext(part).get("id"),
                        )
                    )
                )
                parts.extend(media)
            elif (
                isinstance(part, ir.ReasoningPart)
                and role == "model"
                and part.origin == _DIALECT
                and (part.text or part.signature)
            ):
                # Thought text and signatures only mean something to Gemini; other families' are dropped.
                parts.append(
                    Part(text=part.text, thought=True if part.text else None, thought_signature=part.signature)
                )
        if not parts:
            continue
        prev = contents[-1] if contents else None
        if prev is not None and prev.role == role and _mergeable(prev.parts, parts):
            prev.parts.extend(parts)
        else:
            contents.append(Content(role=role, parts=parts))
    return contents


def _has_response(parts: list[Part]) -> bool:
    return any(p.function_response is not None for p in parts)


def _mergeable(a: list[Part], b: list[Part]) -> bool:
    """Same-role turns merge so parallel calls/results form one turn each (spec §7.16), but function responses
    are never mixed with ordinary user text: Gemini counts the response turn against the call turn."""
    return _has_response(a) == _has_response(b)


def _encode_thinking(req: ir.Request) -> dict[str, Any] | None:
    rc = req.reasoning
    if rc is None:
        return None
    tc: dict[str, Any] = {}
    if rc.budget is not None:
        tc["thinkingBudget"] = rc.budget
    elif rc.effort:
        effort = rc.effort.lower()
        if "gemini-3" in req.model and effort not in ("auto", "none"):
            tc["thinkingLevel"] = _thinking_level(effort, req.model)
        else:
            tc["thinkingBudget"] = effort_to_budget(effort)
    if rc.include_thoughts is not None:
        tc["includeThoughts"] = rc.include_thoughts
    elif tc and tc.get("thinkingBudget") != 0:
        tc["includeThoughts"] = True
    return tc or None


def _thinking_level(effort: str, model: str) -> str:
    """Gemini 3 takes ``thinkingLevel``; Pro only knows LOW/HIGH, Flash also MINIMAL/MEDIUM."""
    if "flash" in model and effort in ("minimal", "low", "medium", "high"):
        return effort.upper()
    return "LOW" if effort in ("minimal", "low") else "HIGH"


def _encode_generation_config(req: ir.Request, ext: dict[str, Any]) -> dict[str, Any]:
    gc: dict[str, Any] = dict(ext.get("generationConfig") or {})
    if req.max_tokens is not None:
        gc["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        gc["temperature"] = req.temperature
    if req.top_p is not None:
        gc["topP"] = req.top_p
    if req.top_k is not None:
        gc["topK"] = req.top_k
    if req.stop:
        gc["stopSequences"] = req.stop
    if req.candidate_count is not None:
        gc["candidateCount"] = req.candidate_count
    if req.seed is not None:
        gc["seed"] = req.seed
    if req.presence_penalty is not None:
        gc["presencePenalty"] = req.presence_penalty
    if req.frequency_penalty is not None:
        gc["frequencyPenalty"] = req.frequency_penalty
    rf = req.response_format
    if rf is not None and rf.type != "text":
        gc["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            gc["responseJsonSchema"] = rf.schema
    elif "responseMimeType" in ext:
        gc["responseMimeType"] = ext["responseMimeType"]
    thinking = _encode_thinking(req)
    if thinking is not None:
        gc["thinkingConfig"] = thinking
    return gc


def _encode_tools(req: ir.Request, ext: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if req.tools:
        decls = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": sanitize_function_name(tool.name)}
            if tool.description:
                decl["description"] = tool.description
            decl["parametersJsonSchema"] = clean_schema_for_gemini(tool.parameters or {})
            decls.append(decl)
        tools.append({"functionDeclarations": decls})
    tools.extend(ext.get("tools") or ())
    return tools


def _encode_tool_config(req: ir.Request, ext: dict[str, Any]) -> dict[str, Any] | None:
    original = ext.get("functionCallingConfig")
    if isinstance(original, dict):
        return {"functionCallingConfig": original}
    tc = req.tool_choice
    if tc is None:
        return None
    if tc.mode == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if tc.mode == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if tc.mode == "tool" and tc.name:
        return {
            "functionCallingConfig": {
                "mode": "ANY",
                "allowedFunctionNames": [sanitize_function_name(tc.name)],
            }
        }
    return {"functionCallingConfig": {"mode": "AUTO"}}


def encode_request_dict(req: ir.Request, *, with_model: bool = True) -> dict[str, Any]:
    """The Gemini body as a dict of Structs (ready for msgspec); the CLI codec wraps it without ``model``."""
    ext = _ext(req)
    body: dict[str, Any] = {}
    if with_model and req.model:
        body["model"] = req.model
    system_extra: list[Part] = []
    contents = _encode_contents(req, system_extra)
    body["contents"] = contents
    system = [Part(text=p.text) for p in req.system] + system_extra
    if system:
        body["systemInstruction"] = Content(role="user", parts=system)
    tools = _encode_tools(req, ext)
    if tools:
        body["tools"] = tools
    tool_config = _encode_tool_config(req, ext)
    if tool_config is not None and req.tools:
        body["toolConfig"] = tool_config
    gc = _encode_generation_config(req, ext)
    if gc:
        body["generationConfig"] = gc
    body["safetySettings"] = ext.get("safetySettings") or DEFAULT_SAFETY_SETTINGS
    for k, v in (ext.get("extra") or {}).items():
        body.setdefault(k, v)
    return body


def count_tokens_request_dict(req: ir.Request) -> dict[str, Any]:
    """``countTokens`` body (spec §5.1 recommended): only accepted fields; system and tools count."""
    inner: dict[str, Any] = {"model": f"models/{req.model}"}
    system_extra: list[Part] = []
    inner["contents"] = _encode_contents(req, system_extra)
    system = [Part(text=p.text) for p in req.system] + system_extra
    if system:
        inner["systemInstruction"] = Content(role="user", parts=system)
    tools = _encode_tools(req, {})
    if tools:
        inner["tools"] = tools
    return inner


def encode_count_tokens_response(total: int) -> bytes:
    """Client-facing count shape for Gemini and Gemini-CLI clients (§3.3: the CLI one is not wrapped)."""
    return _encode({"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]})


def decode_count_tokens_response(body: bytes) -> int:
    try:
        return _count_decoder.decode(body).total_tokens
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(f"invalid countTokens response: {exc}") from None


# --------------------------------------------------------------------------------------------- response


def _response_parts(
    parts: list[Part], resp_id: str | None, names: dict[str, str], tool_base: int = 0
) -> tuple[list[ir.Part], bool]:
    out: list[ir.Part] = []
    saw_tool = False
    k = tool_base
    for part in parts:
        sig = part.thought_signature
        fc = part.function_call
        if fc is not None:
            saw_tool = True
            call_id = fc.id or (_mint_id(resp_id, k, fc.name) if resp_id else _random_id())
            k += 1
            out.append(
                ir.ToolCallPart(
                    id=call_id,
                    name=names.get(fc.name, fc.name),
                    arguments=_args_text(fc.args),
                    signature=sig,
                )
            )
        elif part.thought:
            prev = out[-1] if out else None
            if isinstance(prev, ir.ReasoningPart) and prev.signature is None:
                prev.text += part.text or ""
                prev.signature = sig
            else:
                out.append(ir.ReasoningPart(text=part.text or "", signature=sig, origin=_DIALECT))
        elif part.text:
            prev = out[-1] if out else None
            if isinstance(prev, ir.TextPart) and not prev.ext and not sig:
                prev.text += part.text
            else:
                out.append(ir.TextPart(text=part.text, ext={_DIALECT: {"thoughtSignature": sig}} if sig else {}))
        elif sig:
            out.append(ir.ReasoningPart(text="", signature=sig, origin=_DIALECT))
        else:
            media = _decode_media(part)
            if media is not None:
                out.append(media)
    return out, saw_tool


def _decode_response_struct(g: GenerateContentResponse, names: dict[str, str]) -> ir.Response:
    if g.error is not None:
        raise CodecError(f"upstream error {g.error.code}: {g.error.message}")
    cand = g.candidates[0] if g.candidates else None
    parts: list[ir.Part] = []
    saw_tool = False
    if cand is not None and cand.content is not None:
        parts, saw_tool = _response_parts(cand.content.parts, g.response_id, names)
    native = cand.finish_reason if cand is not None else None
    if native is None and g.prompt_feedback is not None and g.prompt_feedback.block_reason:
        native = "SAFETY"
    resp = ir.Response(
        id=g.response_id or secrets.token_hex(12),
        model=g.model_version or "",
        created=_parse_time(g.create_time),
        parts=parts,
        finish_reason=_finish_reason(native, saw_tool),
        usage=_usage_to_ir(g.usage_metadata) if g.usage_metadata is not None else None,
    )
    if native:
        resp.ext = {_DIALECT: {"finishReason": native}}
    return resp


def _encode_response_parts(parts: list[ir.Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, ir.TextPart):
            out.append(Part(text=part.text, thought_signature=_ext(part).get("thoughtSignature")))
        elif isinstance(part, ir.ReasoningPart):
            sig = part.signature if part.origin == _DIALECT else None
            if part.text or sig:
                out.append(Part(text=part.text, thought=True if part.text else None, thought_signature=sig))
        elif isinstance(part, ir.ToolCallPart):
            out.append(
                Part(
                    function_call=FunctionCall(name=part.name, args=_args_object(part.arguments)),
                    thought_signature=part.signature,
                )
            )
        elif isinstance(part, ir.ImagePart):
            mp = _media_part(part)
            if mp is not None:
                out.append(mp)
    return out


def response_struct(resp: ir.Response) -> OutResponse:
    native = _ext(resp).get("finishReason") or _TO_NATIVE.get(resp.finish_reason, "STOP")
    return OutResponse(
        candidates=[
            OutCandidate(
                content=OutContent(role="model", parts=_encode_response_parts(resp.parts)),
                index=0,
                finish_reason=native,
            )
        ],
        usage_metadata=_usage_from_ir(resp.usage) if resp.usage is not None else None,
        model_version=resp.model or None,
        response_id=resp.id or None,
        create_time=_format_time(resp.created),
    )


def error_body(status: int, message: str) -> bytes:
    """Google's error envelope, used for in-band stream errors."""
    grpc = _GRPC_STATUS.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")
    return _encode(_ErrorEnvelope(error=ErrorBody(code=status, message=message, status=grpc)))


# --------------------------------------------------------------------------------------------- streaming


class GeminiStreamDecoder:
    """Each SSE ``data:`` is a complete GenerateContentResponse; function calls arrive whole.

    Usage and the finish reason are held back until the terminal chunk (Gemini repeats ``usageMetadata`` on
    every chunk, §7.3) and a function call seen in any chunk makes the finish ``tool_calls`` (§7.2).
    """

    __slots__ = ("_done", "_finish", "_id", "_names", "_started", "_tools", "_unwrap", "_usage")

    def __init__(self, names: dict[str, str] | None = None, *, unwrap: bool = False) -> None:
        self._names = names or {}
        self._unwrap = unwrap
        self._started = False
        self._done = False
        self._id: str | None = None
        self._tools = 0
        self._finish: str | None = None
        self._usage: UsageMetadata | None = None

    def feed(self, event: SSEEvent) -> list[ir.Event]:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return []
        if data[0] in b"[,":  # alt=json array framing: "[{...}", ",{...}", "]"
            data = data.lstrip(b"[,").rstrip(b"],").strip()
            if not data:
                return []
        try:
            if self._unwrap:
                env = _cli_chunk_decoder.decode(data)
                if env.error is not None:
                    return self._error(env.error)
                if env.response is None:
                    return []
                chunk = env.response
            else:
                chunk = _response_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []  # keep-alives and non-JSON noise (spec §3.2)
        if chunk.error is not None:
            return self._error(chunk.error)
        return self._chunk(chunk)

    def _error(self, err: ErrorBody) -> list[ir.Event]:
        self._done = True
        status = err.code or 500
        return [ir.Error(status=status, message=err.message or "upstream error", kind=kind_for_status(status))]

    def _chunk(self, chunk: GenerateContentResponse) -> list[ir.Event]:
        out: list[ir.Event] = []
        if not self._started:
            self._started = True
            self._id = chunk.response_id
            out.append(
                ir.Start(
                    id=chunk.response_id or secrets.token_hex(12),
                    model=chunk.model_version or "",
                    created=_parse_time(chunk.create_time),
                )
            )
        if self._done:
            return out
        cand = chunk.candidates[0] if chunk.candidates else None
        if cand is not None and cand.content is not None:
            for part in cand.content.parts:
                self._part(part, out)
        if chunk.usage_metadata is not None:
            self._usage = chunk.usage_metadata
        if cand is not None and cand.finish_reason:
            self._finish = cand.finish_reason
        elif chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
            self._finish = "SAFETY"
        u = chunk.usage_metadata
        if self._finish and u is not None and (u.candidates_token_count is not None or u.total_token_count):
            out.extend(self._terminal())
        return out

    def _part(self, part: Part, out: list[ir.Event]) -> None:
        sig = part.thought_signature
        fc = part.function_call
        if fc is not None:
            k = self._tools
            self._tools += 1
            call_id = fc.id or (_mint_id(self._id, k, fc.name) if self._id else _random_id())
            out.append(ir.ToolCallStart(index=k, id=call_id, name=self._names.get(fc.name, fc.name), signature=sig))
            out.append(ir.ToolArgsDelta(index=k, json=_args_text(fc.args)))
            out.append(ir.BlockStop())
        elif part.text:
            if part.thought:
                out.append(ir.ReasoningDelta(text=part.text, signature=sig, origin=_DIALECT if sig else None))
            else:
                out.append(ir.TextDelta(text=part.text))
        elif sig:
            # Signature-only parts carry no content (§7.13); the signature still reaches Gemini-
            # family clients.
            out.append(ir.ReasoningDelta(text="", signature=sig, origin=_DIALECT))

    def _terminal(self) -> list[ir.Event]:
        self._done = True
        out: list[ir.Event] = []
        if self._usage is not None:
            out.append(ir.UsageEvent(usage=_usage_to_ir(self._usage)))
        out.append(ir.Finish(reason=_finish_reason(self._finish, self._tools > 0)))
        return out

    def close(self) -> list[ir.Event]:
        if self._done or self._finish is None:
            return []
        return self._terminal()


class _CLIChunk(msgspec.Struct):
    response: GenerateContentResponse | None = None
    error: ErrorBody | None = None


_cli_chunk_decoder: Final = msgspec.json.Decoder(_CLIChunk)


class GeminiStreamEncoder:
    """IR events → ``data: {GenerateContentResponse}`` frames (spec §6.4), ``{"response": ...}`` for the CLI.

    Text and thoughts are flushed immediately; a function call is held until its arguments are complete
    because Gemini clients expect whole ``functionCall.args`` objects. The last chunk carries ``finishReason``
    and usage.
    """

    __slots__ = ("_created", "_done", "_id", "_model", "_pending", "_usage", "_wrap")

    def __init__(self, req: ir.Request, *, wrap: bool = False) -> None:
        self._wrap = wrap
        self._model = req.model
        self._id: str | None = None
        self._created = 0
        #: Tool call being assembled: [name, signature, argument fragments].
        self._pending: tuple[str, str | None, list[str]] | None = None
        self._usage: ir.Usage | None = None
        self._done = False

    def _frame(self, parts: list[Part], finish: str | None = None, usage: ir.Usage | None = None) -> bytes:
        chunk = OutResponse(
            candidates=[OutCandidate(content=OutContent(role="model", parts=parts), index=0, finish_reason=finish)],
            usage_metadata=_usage_from_ir(usage) if usage is not None else None,
            model_version=self._model or None,
            response_id=self._id,
            create_time=_format_time(self._created),
        )
        body = _encode(chunk)
        if self._wrap:
            body = b'{"response":' + body + b"}"
        return frame(body)

    def _take_pending(self) -> list[Part]:
        pending = self._pending
        if pending is None:
            return []
        self._pending = None
        name, sig, frags = pending
        return [
            Part(
                function_call=FunctionCall(name=name, args=_args_object("".join(frags))),
                thought_signature=sig,
            )
        ]

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.TextDelta):
            parts = self._take_pending()
            if event.text:
                parts.append(Part(text=event.text))
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ReasoningDelta):
            parts = self._take_pending()
            sig = event.signature if event.origin == _DIALECT else None
            if event.text or sig:
                parts.append(Part(text=event.text, thought=True if event.text else None, thought_signature=sig))
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ToolCallStart):
            parts = self._take_pending()
            self._pending = (event.name, event.signature, [])
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.ToolArgsDelta):
            if self._pending is not None:
                self._pending[2].append(event.json)
            return b""
        if isinstance(event, ir.BlockStop):
            parts = self._take_pending()
            return self._frame(parts) if parts else b""
        if isinstance(event, ir.Start):
            self._id = event.id or None
            self._model = self._model or event.model
            self._created = event.created
            return b""
        if isinstance(event, ir.UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, ir.Finish):
            self._done = True
            return self._frame(self._take_pending(), _TO_NATIVE.get(event.reason, "STOP"), self._usage)
        if isinstance(event, ir.Error):
            self._done = True
            return self._take_pending_frame() + frame(error_body(event.status, event.message))
        return b""

    def _take_pending_frame(self) -> bytes:
        parts = self._take_pending()
        return self._frame(parts) if parts else b""

    def close(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        return self._take_pending_frame()


# --------------------------------------------------------------------------------------------- codec


class GeminiCodec:
    """Gemini ``generateContent`` / ``streamGenerateContent`` bodies ↔ IR.

    ``decode_response`` and ``stream_decoder`` optionally take the IR request so tool names that had to be
    sanitised for Gemini are restored to the client's spelling (spec §4.0.7 item 3, §7.22).
    """

    name = "gemini"

    def decode_request(self, body: bytes) -> ir.Request:
        return _decode_normalised(_normalise_body(body))

    def encode_request(self, req: ir.Request) -> bytes:
        return _encode(encode_request_dict(req))

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        try:
            g = _response_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"invalid Gemini response: {exc}") from None
        return _decode_response_struct(g, _name_map(req))

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return _encode(response_struct(resp))

    def stream_decoder(self, req: ir.Request | None = None) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(_name_map(req))

    def stream_encoder(self, req: ir.Request) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(req)

    def encode_count_tokens_request(self, req: ir.Request) -> bytes:
        return _encode({"generateContentRequest": count_tokens_request_dict(req)})

    def decode_count_tokens_response(self, body: bytes) -> int:
        return decode_count_tokens_response(body)

    def encode_count_tokens_response(self, total: int) -> bytes:
        return encode_count_tokens_response(total)


CODEC: Final = GeminiCodec()
