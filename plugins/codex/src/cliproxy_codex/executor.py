"""Executor for the OpenAI Responses API: ``POST <base>/responses``.

Two upstreams share it. With an API key the base defaults to ``https://api.openai.com/v1`` and bodies go out as
the client (or codec) wrote them, apart from effort-suffixed models. ChatGPT logins (``codex-<email>.json``)
talk to the ChatGPT Codex backend (``endpoints.codex.api-url``, default ``chatgpt.com/backend-api/codex``) as
Codex CLI does: bearer access token, ``chatgpt-account-id``, Codex CLI's headers, and a body shaped to the
backend's rules (see ``chatgpt``). An API-key entry whose ``base-url`` is that backend gets the same body rules.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, Final, cast
from urllib.parse import urlsplit

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import ProxyError, UpstreamError, upstream_message
from cliproxy.http import HttpClients
from cliproxy.oauth import endpoint
from cliproxy.protocols import ExecutorServices, UpstreamCall, UpstreamResponse
from cliproxy.sse import SSEEvent
from cliproxy.upstream import HttpExecutor, retry_after_header, retry_hint_in_text

from .chatgpt import OutputCollector, error_detail, reset_wait, shape_request, usage_limit
from .models import PROVIDER, split_effort

__all__ = [
    "CHATGPT_BASE_URL",
    "DEFAULT_BASE_URL",
    "INCOMPLETE_STREAM_MESSAGE",
    "CodexExecutor",
    "is_chatgpt_backend",
]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
CHATGPT_BASE_URL: Final = "https://chatgpt.com/backend-api/codex"
_CHATGPT_PATH: Final = "/backend-api/codex"

#: Codex CLI fingerprint the ChatGPT backend expects (client values win when the client is the Codex CLI).
CODEX_VERSION: Final = "0.21.0"
CODEX_USER_AGENT: Final = "codex_cli_rs/0.50.0 (Mac OS 26.0.1; arm64) Apple_Terminal/464"
USER_AGENT: Final = "cliproxy-codex"
INCOMPLETE_STREAM_MESSAGE: Final = (
    "stream error: stream disconnected before completion: stream closed before response.completed"
)

#: Codex CLI request headers passed on to the ChatGPT backend when the client sends them (lower-case names).
_CODEX_CLIENT_HEADERS: Final = (
    "session-id",
    "thread-id",
    "x-client-request-id",
    "x-codex-window-id",
    "x-codex-turn-metadata",
    "x-codex-beta-features",
)
#: Fields ``POST /responses/input_tokens`` accepts; a generate body carries more.
_COUNT_FIELDS: Final = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "previous_response_id",
        "conversation",
        "truncation",
    }
)
#: Events by which a stream reports that it failed.
_FAILURE_EVENTS: Final = frozenset({"error", "response.failed"})
_FAILURE_PREFIXES: Final = (b'{"type":"error"', b'{"type":"response.failed"')
#: Final events whose ``response`` is the whole answer of a non-stream call.
_FINAL_EVENTS: Final = frozenset({"response.completed", "response.incomplete"})

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def is_chatgpt_backend(base_url: str) -> bool:
    return urlsplit(base_url).path.rstrip("/").endswith(_CHATGPT_PATH)


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    low = name.lower()
    for existing in [k for k in headers if k.lower() == low]:
        del headers[existing]
    headers[name] = value


class CodexExecutor(HttpExecutor):
    name = "codex"
    wire_format = "openai-response"

    def __init__(self, http: HttpClients, services: ExecutorServices | None = None) -> None:
        super().__init__(http)
        #: Live settings (``services.settings`` follows config reloads) for ``endpoints.codex.api-url``.
        self.services = services

    # ------------------------------------------------------------------ per-credential facts

    def token(self, cred: Credential) -> str | None:
        """API key, or the OAuth access token an OAuth credential keeps in its metadata."""
        if cred.api_key:
            return cred.api_key
        token = cred.metadata.get("access_token")
        return token if isinstance(token, str) and token else None

    def base_url(self, cred: Credential) -> str:
        if cred.base_url:
            return cred.base_url.rstrip("/")
        if cred.api_key:
            return DEFAULT_BASE_URL
        if self.services is None:
            return CHATGPT_BASE_URL
        return endpoint(self.services.settings, PROVIDER, "api-url", CHATGPT_BASE_URL).rstrip("/")

    def chatgpt(self, cred: Credential) -> bool:
        """ChatGPT logins always reach the backend (whatever ``api-url`` is); API keys when their URL is it."""
        return not cred.api_key or is_chatgpt_backend(self.base_url(cred))

    # ------------------------------------------------------------------ HttpExecutor hooks

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        if call.action == "count_tokens":
            return self.base_url(cred) + "/responses/input_tokens"
        return self.base_url(cred) + "/responses"

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        chatgpt = self.chatgpt(cred)
        streaming = call.action == "generate" and (call.stream or chatgpt)
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if streaming else "application/json",
            "User-Agent": USER_AGENT,
        }
        token = self.token(cred)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if chatgpt:
            client = call.client_headers
            headers["Version"] = client.get("version") or CODEX_VERSION
            headers["Openai-Beta"] = client.get("openai-beta") or "responses=experimental"
            headers["Session_id"] = client.get("session_id") or client.get("session-id") or str(uuid.uuid4())
            if client.get("conversation_id"):
                headers["Conversation_id"] = client["conversation_id"]
            agent = client.get("user-agent", "")
            headers["User-Agent"] = agent if agent.startswith("codex_") else CODEX_USER_AGENT
            for name in _CODEX_CLIENT_HEADERS:
                if client.get(name):
                    headers[name] = client[name]
            if not cred.api_key:
                headers["Originator"] = client.get("originator") or "codex_cli_rs"
                account = cred.metadata.get("account_id")
                if isinstance(account, str) and account:
                    headers["Chatgpt-Account-Id"] = account
        for name, value in cred.headers.items():
            _set_header(headers, name, value)
        return headers

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        base, effort = split_effort(call.model)
        chatgpt = self.chatgpt(cred)
        counting = call.action == "count_tokens"
        if effort is None and not chatgpt and not counting:
            return call.body  # the common API-key case: nothing to change, skip the decode
        try:
            data = _decode(call.body)
        except msgspec.DecodeError:
            return call.body
        if not isinstance(data, dict):
            return call.body
        if effort is not None:
            data["model"] = base
            reasoning = data.get("reasoning")
            reasoning = dict(reasoning) if isinstance(reasoning, dict) else {}
            reasoning["effort"] = effort  # the suffix is the more specific instruction: it wins
            data["reasoning"] = reasoning
        if counting:
            for key in [k for k in data if k not in _COUNT_FIELDS]:
                del data[key]
        elif chatgpt:
            shape_request(data)
        return _encode(data)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """The backend's own answers: ``{"detail": ...}`` rule errors and plan usage limits.

        ``usage_limit_reached`` (429) cools the account until its plan window resets (see
        ``retry_after_hint``); ``usage_not_included`` (a plan without Codex) becomes 403, so the account rests
        long instead of being retried like a rate limit.
        """
        limit = usage_limit(headers, body) if status in (403, 429) else None
        if limit is not None and limit[0] == "usage_not_included":
            return UpstreamError(403, upstream_message(body, limit[0]), body=body)
        detail = error_detail(body)
        if detail is not None:
            return UpstreamError(status, detail, body=body, retry_after=self.retry_after_hint(status, headers, body))
        return super().error(status, headers, body)

    def retry_after_hint(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """``Retry-After`` if sent, else when the plan's usage window resets, else a wait stated in the text.

        A ``usage_limit_reached`` answer says ``resets_in_seconds`` (older answers), ``resets_at`` (epoch) or
        ``x-codex-primary-reset-after-seconds``; the pool cools the account that long (clamped).
        """
        if status != 429:
            return None
        hint = retry_after_header(headers)
        if hint is None:
            hint = reset_wait(headers, body)
        return hint if hint is not None else retry_hint_in_text(body)

    def first_event_error(self, ev: SSEEvent) -> UpstreamError | None:
        """A stream that fails at once (``error`` / ``response.failed`` first) still lets the pool fail over."""
        if ev.event not in _FAILURE_EVENTS and not ev.data.startswith(_FAILURE_PREFIXES):
            return None
        try:
            obj = _decode(ev.data)
        except msgspec.DecodeError:
            return None
        if not isinstance(obj, dict) or (obj.get("type") or ev.event) not in _FAILURE_EVENTS:
            return None
        return self._stream_failure(obj, ev.data)

    # ------------------------------------------------------------------ transport

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        if not self.chatgpt(cred):
            return await super().execute(call, cred)
        if call.action == "count_tokens":
            raise ProxyError(501, "token counting is not available on the ChatGPT Codex backend", code="not_supported")
        return await self._collect(dataclasses.replace(call, stream=True), cred)

    async def _collect(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        """The backend only streams: read the SSE up to the final event and answer with its ``response``."""
        events = cast(AsyncGenerator[SSEEvent, None], self.stream(call, cred))
        output = OutputCollector()
        async with aclosing(events):
            async for ev in events:
                try:
                    obj = _decode(ev.data)
                except msgspec.DecodeError:
                    continue
                if not isinstance(obj, dict):
                    continue
                kind = obj.get("type") or ev.event
                if kind in _FINAL_EVENTS and isinstance(obj.get("response"), dict):
                    final = output.final(obj["response"])
                    return UpstreamResponse(200, _encode(final), {"content-type": "application/json"})
                if kind in ("response.failed", "error"):
                    raise self._stream_failure(obj, ev.data)
                output.feed(obj)
        raise UpstreamError(408, INCOMPLETE_STREAM_MESSAGE)

    def _stream_failure(self, obj: dict[str, Any], raw: bytes) -> UpstreamError:
        """Map an in-stream failure to a status so the pool cools the credential for the right reason."""
        err: Any = obj.get("error")
        resp = obj.get("response")
        if not isinstance(err, dict) and isinstance(resp, dict):
            err = resp.get("error")
        err = err if isinstance(err, dict) else {}
        code = str(err.get("code") or err.get("type") or "")
        message = str(err.get("message") or upstream_message(raw, "upstream response failed"))
        declared = obj.get("status_code")
        if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 400:
            status = declared
        elif "rate_limit" in code or "usage_limit" in code or "quota" in code:
            status = 429
        elif code in ("context_length_exceeded", "invalid_prompt", "invalid_request_error"):
            status = 400
        else:
            status = 502
        hint = self.retry_after_hint(status, {}, _encode({"error": err})) if status == 429 else None
        if status == 429 and hint is None:
            hint = retry_hint_in_text(raw)
        return UpstreamError(status, message, body=raw, retry_after=hint)
