"""Helpers shared by the dialect controllers: turning pipeline results into Litestar responses."""

from __future__ import annotations

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
FORWARD_HEADERS = (
    "anthropic-beta",
    "anthropic-version",
    "user-agent",
    "x-stainless-helper-method",
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


_probe_decoder = msgspec.json.Decoder(Probe)


def probe(body: bytes) -> Probe:
    if not body.strip():
        raise ProxyError(400, "request body is empty; expected a JSON object")
    try:
        p = _probe_decoder.decode(body)
    except msgspec.ValidationError:
        raise ProxyError(400, "request body must be a JSON object") from None
    except msgspec.DecodeError as exc:
        raise ProxyError(400, f"request body is not valid JSON: {exc}") from None
    if p.model is not None and not isinstance(p.model, str):
        raise ProxyError(400, "model: expected a string")
    return p


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
