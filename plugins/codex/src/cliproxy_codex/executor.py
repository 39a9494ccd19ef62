"""Executor for the OpenAI Responses API: ``POST <base>/responses``.

Two upstreams share it. With an API key the base defaults to ``https://api.openai.com/v1`` and bodies go out as
the client (or codec) wrote them, apart from effort-suffixed models. The ChatGPT Codex backend
(``.../backend-api/codex``, OAuth logins) is the service behind the Codex CLI, not the public API: it only
streams, refuses stored responses, ``previous_response_id`` and sampling limits, requires ``instructions``, and
expects the Codex CLI's headers. Those quirks apply only when the base URL is that backend.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, Final, cast
from urllib.parse import urlsplit

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import ProxyError, UpstreamError, upstream_message
from cliproxy.protocols import UpstreamCall, UpstreamResponse
from cliproxy.sse import SSEEvent
from cliproxy.upstream import HINT_SCAN_BYTES, HttpExecutor, hint_seconds, retry_after_header, retry_hint_in_text

from .models import split_effort

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

#: Sampling limits the ChatGPT backend rejects (the reference's translators never sent them there).
_CHATGPT_UNSUPPORTED: Final = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p")
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
#: Final events whose ``response`` is the whole answer of a non-stream call.
_FINAL_EVENTS: Final = frozenset({"response.completed", "response.incomplete"})

#: The ChatGPT backend's usage-limit errors say when the window resets: ``"resets_in_seconds": 42``.
_RESETS_IN: Final = re.compile(rb'"resets_in_seconds"\s*:\s*([0-9.]+)')

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
        return DEFAULT_BASE_URL if cred.api_key else CHATGPT_BASE_URL

    def chatgpt(self, cred: Credential) -> bool:
        return is_chatgpt_backend(self.base_url(cred))

    def instructions(self, data: dict[str, Any], call: UpstreamCall, cred: Credential) -> bool:
        """Make sure the ChatGPT backend gets ``instructions``; returns whether the body changed.

        Hook point for OAuth logins: the backend accepts only the Codex CLI's own system prompt there, so that work
        will put the official prompt in ``instructions`` and move the client's system text into a leading user
        message. Here a missing value just becomes an empty string, which the backend's schema requires.
        """
        if isinstance(data.get("instructions"), str):
            return False
        data["instructions"] = ""
        return True

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
            headers["Session_id"] = client.get("session_id") or str(uuid.uuid4())
            if client.get("conversation_id"):
                headers["Conversation_id"] = client["conversation_id"]
            agent = client.get("user-agent", "")
            headers["User-Agent"] = agent if agent.startswith("codex_") else CODEX_USER_AGENT
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
            data.pop("previous_response_id", None)
            data["stream"] = True
            data["store"] = False
            for key in _CHATGPT_UNSUPPORTED:
                data.pop(key, None)
            self.instructions(data, call, cred)
        return _encode(data)

    def retry_after_hint(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """``Retry-After`` if sent, else the ChatGPT backend's ``resets_in_seconds``, else the message text."""
        if status != 429:
            return None
        hint = retry_after_header(headers)
        if hint is None:
            m = _RESETS_IN.search(body[:HINT_SCAN_BYTES])
            hint = hint_seconds(m) if m else retry_hint_in_text(body)
        return hint

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
                    return UpstreamResponse(200, _encode(obj["response"]), {"content-type": "application/json"})
                if kind in ("response.failed", "error"):
                    raise self._stream_failure(obj, ev.data)
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
        if "rate_limit" in code or "usage_limit" in code or "quota" in code:
            status = 429
        elif code in ("context_length_exceeded", "invalid_prompt", "invalid_request_error"):
            status = 400
        else:
            status = 502
        return UpstreamError(status, message, body=raw, retry_after=self.retry_after_hint(status, {}, raw))
