"""Helpers shared by the dialect controllers: turning pipeline results into Litestar responses."""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import SkipValidation
from litestar.response import Stream

from ..errors import ProxyError
from ..execute import Answer, ExecutionService, RequestContext, StreamAnswer
from ..models import ModelRegistry
from ..pool import CredentialPool
from ..registries import ModelInfo

__all__ = ["Exec", "Models", "Pool", "Probe", "context", "probe", "to_response", "visible_models"]

#: Headers a client sends that some upstream may need; everything else (auth!) is never forwarded.
#: The ``x-stainless-*``/``x-app``/session ones are Claude Code's fingerprint, which a Claude Code OAuth
#: upstream passes on when the client *is* Claude Code.
FORWARD_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "anthropic-dangerous-direct-browser-access",
    "user-agent",
    "x-app",
    "x-claude-code-session-id",
    "x-stainless-arch",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
    "openai-beta",
    "session_id",
    "conversation_id",
    "originator",
    # Codex CLI's own fingerprint, which the ChatGPT backend executor passes on (Codex CLI talks to it directly).
    "version",
    "session-id",
    "thread-id",
    "x-client-request-id",
    "x-codex-window-id",
    "x-codex-turn-metadata",
    "x-codex-beta-features",
)


Exec: TypeAlias = NamedDependency[SkipValidation[ExecutionService]]
Models: TypeAlias = NamedDependency[SkipValidation[ModelRegistry]]
Pool: TypeAlias = NamedDependency[SkipValidation[CredentialPool]]


class Probe(msgspec.Struct):
    """The two top-level fields routing needs; the rest of the body is not parsed here."""

    model: Any = None
    stream: Any = None


# What each dialect's API requires at the top level of a request, checked before any upstream call so a
# malformed request gets a 400 in the caller's shape on the pass-through path too (which forwards the body
# without decoding it). Only the structure is typed: message contents stay raw bytes, so this costs one
# scan of the body, which msgspec makes anyway to find ``model``.
_Messages = list[dict[str, msgspec.Raw]]


class _OpenAIChat(Probe):
    messages: _Messages | None = None


class _OpenAIResponses(Probe):
    input: str | list[msgspec.Raw] | None = None
    #: A stored prompt template may stand in for ``input``.
    prompt: dict[str, msgspec.Raw] | None = None


class _Claude(Probe):
    messages: _Messages | None = None
    max_tokens: int | None = None


class _Gemini(Probe):
    contents: _Messages | None = None
    #: countTokens' other form: the whole generate request, wrapped (the wire name, hence camelCase).
    generateContentRequest: dict[str, msgspec.Raw] | None = None


class _GeminiRequest(msgspec.Struct):
    contents: _Messages | None = None


class _GeminiCli(Probe):
    request: _GeminiRequest | None = None


_decoders: dict[str | None, msgspec.json.Decoder[Any]] = {
    None: msgspec.json.Decoder(Probe),
    "openai": msgspec.json.Decoder(_OpenAIChat),
    "openai-response": msgspec.json.Decoder(_OpenAIResponses),
    "claude": msgspec.json.Decoder(_Claude),
    "gemini": msgspec.json.Decoder(_Gemini),
    "gemini-cli": msgspec.json.Decoder(_GeminiCli),
}


def probe(body: bytes, dialect: str | None = None, action: str = "generate") -> Probe:
    """``model`` and ``stream``, after checking the structure ``dialect``'s API requires (400 if not met)."""
    if not body.strip():
        raise ProxyError(400, "request body is empty; expected a JSON object")
    try:
        p: Probe = _decoders.get(dialect, _decoders[None]).decode(body)
    except msgspec.ValidationError as exc:
        raise ProxyError(400, _shape_error(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise ProxyError(400, f"request body is not valid JSON: {exc}") from None
    if p.model is not None and not isinstance(p.model, str):
        raise ProxyError(400, "model: expected a string")
    problem = _missing(p, action)
    if problem:
        raise ProxyError(400, problem)
    return p


def _missing(p: Probe, action: str) -> str | None:
    if isinstance(p, (_OpenAIChat, _Claude)):
        if p.messages is None:
            return "messages: required (an array of message objects)"
        if not p.messages:
            return "messages: must contain at least one message"
        if isinstance(p, _Claude) and action == "generate":
            if p.max_tokens is None:
                return "max_tokens: required (the most tokens the answer may have)"
            if p.max_tokens < 1:
                return f"max_tokens: must be at least 1, got {p.max_tokens}"
    elif isinstance(p, _OpenAIResponses):
        if p.input is None and p.prompt is None:
            return "input: required (a string or an array of input items)"
    elif isinstance(p, _Gemini):
        if not p.contents and not (action == "count_tokens" and p.generateContentRequest is not None):
            return "contents: required (a non-empty array of Content objects)"
    elif isinstance(p, _GeminiCli):
        if p.request is None:
            return "request: required (the generateContent request object)"
        if not p.request.contents:
            return "request.contents: required (a non-empty array of Content objects)"
    return None


_TYPE_WORDS = {
    "array": "an array",
    "object": "an object",
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
}
_VALIDATION = re.compile(r"^Expected `([^`]+)`, got `([^`]+)` - at `\$\.?([^`]*)`$")


def _shape_error(msg: str) -> str:
    """msgspec's ``Expected `array | null`, got `str` - at `$.messages` `` in the caller's words."""
    m = _VALIDATION.match(msg)
    if m is None:
        return "request body must be a JSON object" if "at `$`" in msg or "$" not in msg else msg
    wanted = [_TYPE_WORDS.get(t.strip(), t.strip()) for t in m.group(1).split("|") if t.strip() != "null"]
    got = _TYPE_WORDS.get(m.group(2), m.group(2))
    where = m.group(3) or "request body"
    return f"{where}: expected {' or '.join(wanted)}, got {got}"


def context(request: Request[Any, Any, Any], action: str = "generate") -> RequestContext:
    headers = request.headers
    return RequestContext(
        headers={h: headers[h] for h in FORWARD_HEADERS if h in headers},
        action=action,
    )


def to_response(result: Answer | StreamAnswer) -> Response[Any]:
    if isinstance(result, StreamAnswer):
        return Stream(result.chunks, media_type=result.media_type, headers=result.headers)
    # CORS headers come from the app-level ``response_headers``.
    return Response(result.body, status_code=result.status, media_type=result.media_type, headers=result.headers)


def visible_models(registry: ModelRegistry, pool: CredentialPool) -> list[ModelInfo]:
    """Models with at least one credential that is not suspended for auth reasons (cooling ones stay)."""
    out: list[ModelInfo] = []
    now = pool.clock()
    for entry in registry.all():
        for cid in entry.credentials:
            st = pool.get(cid)
            if st is None or st.cred.disabled or st.unavailable_reason:
                continue
            blocked = st.blocked(entry.info.id, now)
            if blocked is None or blocked.reason == "quota" or blocked.reason == "transient":
                out.append(entry.info)
                break
    return out
