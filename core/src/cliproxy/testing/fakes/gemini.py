"""Fake Google Gemini upstreams: the Generative Language API and Cloud Code Assist (Gemini CLI)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .base import (
    Conn,
    Endpoint,
    FakeUpstream,
    Handler,
    Recorded,
    Reply,
    dumps,
    duration_json,
    new_id,
    split_text,
    sse,
)

__all__ = ["FakeGemini", "FakeGeminiCLI", "google_status", "validate_gemini_request"]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"}

_PATH = re.compile(r"^/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>[^:/]+):(?P<method>[A-Za-z]+)$")
_MODELS = re.compile(r"^/(?P<version>v1|v1beta|v1alpha)/models(?:/(?P<model>[^:/]+))?$")

# GenerateContentRequest fields → the google.genai.types model that describes each one on the wire.
_FIELDS: dict[str, tuple[str, bool]] = {
    "contents": ("Content", True),
    "systemInstruction": ("Content", False),
    "tools": ("Tool", True),
    "toolConfig": ("ToolConfig", False),
    "generationConfig": ("GenerationConfig", False),
    "safetySettings": ("SafetySetting", True),
}
_PLAIN = {"cachedContent", "model", "labels"}
_adapters: dict[tuple[str, bool], Any] = {}


def google_status(status: int) -> str:
    return _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def validate_gemini_request(body: Any, *, require_contents: bool = True, extra: Sequence[str] = ()) -> str | None:
    """Validate a GenerateContentRequest with the google-genai wire types (camelCase or snake_case keys)."""
    if not isinstance(body, dict):
        return "request body is not a JSON object"
    from google.genai import types
    from pydantic import TypeAdapter, ValidationError

    errors: list[str] = []
    for key, value in body.items():
        name = _camel(key)
        if name in _PLAIN or key in extra:
            continue
        if name not in _FIELDS:
            errors.append(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
            continue
        type_name, many = _FIELDS[name]
        adapter = _adapters.get((type_name, many))
        if adapter is None:
            model = getattr(types, type_name)
            adapter = TypeAdapter(list[model] if many else model)  # type: ignore[valid-type]
            _adapters[(type_name, many)] = adapter
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adapter.validate_json(dumps(value))
        except ValidationError as exc:
            for err in exc.errors()[:4]:
                loc = ".".join(str(p) for p in err["loc"])
                errors.append(f"{name}.{loc}: {err['msg']}" if loc else f"{name}: {err['msg']}")
    contents = body.get("contents")
    if require_contents and not contents:
        errors.append("* GenerateContentRequest.contents: contents is not specified")
    return "; ".join(errors) if errors else None


def _gemini_error(status: int, message: str, reply: Reply) -> bytes:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": reply.error_type or google_status(status),
    }
    details: list[dict[str, Any]] = []
    if reply.retry_after is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": duration_json(reply.retry_after),
            }
        )
    if status == 400 and message.startswith("API key not valid"):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if details:
        error["details"] = details
    return dumps({"error": error})


def _text_of(contents: Any) -> str:
    for content in reversed(contents if isinstance(contents, list) else []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            parts = content.get("parts") or []
            return " ".join(str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


class FakeGemini(FakeUpstream):
    """``/v1beta/models/{model}:generateContent|streamGenerateContent|countTokens``, ``GET /v1beta/models``.

    ``streamGenerateContent?alt=sse`` streams CRLF-framed ``data:`` events; without ``alt`` it streams one
    JSON array incrementally, as Google does. Keys come from ``x-goog-api-key`` or ``?key=``; an unknown key
    is answered like Google does (400 ``INVALID_ARGUMENT`` + ``API_KEY_INVALID``), a missing one with 403.
    ``Reply.signature`` becomes the ``thoughtSignature`` of the last thought part (else of the first function
    call, else of the first part). ``functionCall.id`` is only sent when the ``ToolCall`` has an id.
    """

    dialect: ClassVar[str] = "gemini"
    error_content_type: ClassVar[str] = "application/json; charset=UTF-8"
    retry_after_header: ClassVar[bool] = False

    def default_models(self) -> list[str]:
        return ["gemini-2.5-flash", "gemini-2.5-pro"]

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or query.get("key") or super().extract_key(headers, query)

    def route(self, method: str, path: str) -> Endpoint | None:
        m = _PATH.match(path)
        if m and method == "POST":
            kind = m["method"]
            if kind in ("generateContent", "streamGenerateContent"):
                return Endpoint(self._generate, self._check_generate)
            if kind == "countTokens":
                return Endpoint(self._count, self._check_count)
            return None
        m = _MODELS.match(path)
        if m and method == "GET":
            return Endpoint(self._models, scripted=False)
        return None

    def _check_generate(self, rec: Recorded) -> str | None:
        return validate_gemini_request(rec.json)

    def _check_count(self, rec: Recorded) -> str | None:
        inner = rec.json.get("generateContentRequest")
        if inner is not None:
            return validate_gemini_request(inner)
        return validate_gemini_request(rec.json)

    def error_body(self, status: int, message: str, reply: Reply) -> bytes:
        return _gemini_error(status, message, reply)

    def unauthorized(self, key: str | None) -> Reply:
        if not key:
            return Reply(
                status=403,
                error_message="Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        return Reply(status=400, error_message="API key not valid. Please pass a valid API key.")

    def not_found(self, rec: Recorded) -> Reply:
        return Reply(status=404, error_message=f"The requested URL {rec.path} was not found on this server.")

    def last_user_text(self, rec: Recorded) -> str:
        body = rec.json if isinstance(rec.json, dict) else {}
        return _text_of(self.inner_request(body).get("contents"))

    # -- hooks the Gemini CLI variant overrides --------------------------------------------------------------
    def inner_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def model_of(self, rec: Recorded) -> str:
        m = _PATH.match(rec.path)
        return m["model"] if m else self.models[0]

    def wrap(self, obj: dict[str, Any]) -> dict[str, Any]:
        return obj

    # -- rendering -------------------------------------------------------------------------------------------
    def _model_info(self, name: str) -> dict[str, Any]:
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "description": f"Fake {name}",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": True,
        }

    async def _models(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        m = _MODELS.match(rec.path)
        name = m["model"] if m else None
        if name is None:
            await self.send_json(conn, reply, {"models": [self._model_info(n) for n in self.models]})
        elif name in self.models:
            await self.send_json(conn, reply, self._model_info(name))
        else:
            await self.send_error(
                conn, Reply(status=404, error_message=f"models/{name} is not found for API version v1beta.")
            )

    async def _count(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        n = reply.usage.input
        await self.send_json(
            conn, reply, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
        )

    @staticmethod
    def usage_obj(reply: Reply) -> dict[str, Any]:
        u = reply.usage
        usage: dict[str, Any] = {
            "promptTokenCount": u.input,
            "candidatesTokenCount": max(u.output - u.reasoning, 0),
            "totalTokenCount": u.total,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input}],
        }
        if u.reasoning:
            usage["thoughtsTokenCount"] = u.reasoning
        if u.cached:
            usage["cachedContentTokenCount"] = u.cached
        return usage

    def _parts(self, reply: Reply, reasoning: list[str], text: list[str]) -> list[list[dict[str, Any]]]:
        """Part groups, one per stream chunk (non-stream passes one piece each and flattens)."""
        groups: list[list[dict[str, Any]]] = []
        signed = False
        for i, piece in enumerate(reasoning):
            part: dict[str, Any] = {"text": piece, "thought": True}
            if reply.signature is not None and i == len(reasoning) - 1:
                part["thoughtSignature"] = reply.signature
                signed = True
            groups.append([part])
        groups.extend([{"text": piece}] for piece in text)
        if reply.tool_calls:
            calls: list[dict[str, Any]] = []
            for tc in reply.tool_calls:
                call: dict[str, Any] = {"functionCall": {"name": tc.name, "args": tc.arguments_dict()}}
                if tc.id:
                    call["functionCall"]["id"] = tc.id
                if reply.signature is not None and not signed:
                    call["thoughtSignature"] = reply.signature
                    signed = True
                calls.append(call)
            groups.append(calls)
        if reply.signature is not None and not signed and groups:
            groups[0][0]["thoughtSignature"] = reply.signature
        return groups

    def _response(self, reply: Reply, model: str, rid: str, parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        obj: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = _FINISH.get(reply.finish_reason, reply.finish_reason)
            obj["usageMetadata"] = self.usage_obj(reply)
        obj["modelVersion"] = model
        obj["responseId"] = rid
        return self.wrap(obj)

    async def _generate(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        model = reply.model or self.model_of(rec)
        rid = reply.id or new_id("", 11)
        if not rec.path.endswith(":streamGenerateContent"):
            whole = [reply.reasoning] if reply.reasoning else []
            groups = self._parts(reply, whole, [reply.text] if reply.text else [])
            parts = [p for g in groups for p in g] or [{"text": ""}]
            await self.send_json(conn, reply, self._response(reply, model, rid, parts, True))
            return
        groups = self._parts(reply, split_text(reply.reasoning, reply.chunks), split_text(reply.text, reply.chunks))
        groups = groups or [[{"text": ""}]]
        objs = [self._response(reply, model, rid, g, i == len(groups) - 1) for i, g in enumerate(groups)]
        if rec.query.get("alt") == "sse":
            await self.send_stream(conn, reply, [sse(dumps(o), crlf=True) for o in objs])
            return
        frames = [(b"[" if i == 0 else b"\n,\r\n") + dumps(o) for i, o in enumerate(objs)] + [b"\n]"]
        await self.send_stream(conn, reply, frames, "application/json; charset=UTF-8")


class FakeGeminiCLI(FakeGemini):
    """Cloud Code Assist (``cloudcode-pa``) as the Gemini CLI and Antigravity use it.

    ``POST /v1internal:generateContent|streamGenerateContent|countTokens`` take the ``{"model", "project",
    "request"}`` envelope and answer ``{"response": ...}``; ``loadCodeAssist``/``onboardUser`` model the
    project/tier discovery (``onboarded=False`` makes the first ``loadCodeAssist`` report no tier;
    ``onboard_polls`` is how many ``onboardUser`` calls answer ``done: false`` first).
    """

    dialect: ClassVar[str] = "gemini-cli"

    def __init__(
        self,
        *,
        keys: Sequence[str] | None = None,
        handler: Handler | None = None,
        validate: bool = True,
        models: Sequence[str] | None = None,
        allow_fields: Sequence[str] = (),
        project: str = "fake-project-123",
        onboarded: bool = True,
        onboard_polls: int = 0,
        tier: str = "free-tier",
    ) -> None:
        super().__init__(keys=keys, handler=handler, validate=validate, models=models, allow_fields=allow_fields)
        self.project = project
        self.onboarded = onboarded
        self.onboard_polls = onboard_polls
        self.tier = tier

    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def unauthorized(self, key: str | None) -> Reply:
        return Reply(
            status=401,
            error_message="Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
        )

    def route(self, method: str, path: str) -> Endpoint | None:
        if method != "POST" or not path.startswith("/v1internal:"):
            return None
        kind = path.split(":", 1)[1]
        if kind in ("generateContent", "streamGenerateContent"):
            return Endpoint(self._generate, self._check_envelope)
        if kind == "countTokens":
            return Endpoint(self._count, self._check_count_envelope)
        if kind == "loadCodeAssist":
            return Endpoint(self._load, scripted=False)
        if kind == "onboardUser":
            return Endpoint(self._onboard, scripted=False)
        return None

    def inner_request(self, body: dict[str, Any]) -> dict[str, Any]:
        inner = body.get("request")
        return inner if isinstance(inner, dict) else {}

    def model_of(self, rec: Recorded) -> str:
        model = rec.json.get("model") if isinstance(rec.json, dict) else None
        return str(model) if model else self.models[0]

    def wrap(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"response": obj, "traceId": new_id("", 8)}

    def _check_envelope(self, rec: Recorded) -> str | None:
        body = rec.json
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: field is required"
        if not isinstance(body.get("request"), dict):
            return "request: field is required"
        return validate_gemini_request(body["request"], extra=("session_id", "sessionId"))

    def _check_count_envelope(self, rec: Recorded) -> str | None:
        inner = rec.json.get("request")
        if not isinstance(inner, dict):
            return "request: field is required"
        return validate_gemini_request(inner)

    async def _count(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        await self.send_json(conn, reply, {"totalTokens": reply.usage.input})

    def _tier(self, tier_id: str, default: bool) -> dict[str, Any]:
        names = {"free-tier": "Gemini Code Assist for individuals", "standard-tier": "Gemini Code Assist"}
        return {
            "id": tier_id,
            "name": names.get(tier_id, tier_id),
            "description": f"Fake {tier_id}",
            "userDefinedCloudaicompanionProject": tier_id != "free-tier",
            **({"isDefault": True} if default else {}),
        }

    async def _load(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        out: dict[str, Any] = {
            "allowedTiers": [self._tier("free-tier", True), self._tier("standard-tier", False)],
            "gcpManaged": False,
        }
        if self.onboarded:
            out["currentTier"] = self._tier(self.tier, False)
            out["cloudaicompanionProject"] = self.project
        await self.send_json(conn, reply, out)

    async def _onboard(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        if self.onboard_polls > 0:
            self.onboard_polls -= 1
            await self.send_json(conn, reply, {"name": "operations/onboard-fake", "done": False})
            return
        self.onboarded = True
        response = {
            "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
            "cloudaicompanionProject": {"id": self.project, "name": self.project},
        }
        await self.send_json(conn, reply, {"name": "operations/onboard-fake", "done": True, "response": response})
