"""Executor for the Anthropic Messages API: ``POST <base>/v1/messages?beta=true`` (and ``/count_tokens``).

API keys only for now. The Claude Code OAuth quirks of the reference (Bearer token, the ``claude-code``/
``oauth`` betas, ``X-Stainless-*`` fingerprint headers, the "You are Claude Code" system block) belong to OAuth
credentials; subclasses add them through :meth:`ClaudeExecutor.required_betas`,
:meth:`ClaudeExecutor.fingerprint_headers` and :meth:`ClaudeExecutor.rewrite_body`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError, upstream_message
from cliproxy.formats.claude import CODEC as CLAUDE
from cliproxy.formats.claude import error_status
from cliproxy.protocols import UpstreamCall
from cliproxy.sse import SSEEvent
from cliproxy.upstream import HttpExecutor

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_BASE_URL", "ClaudeExecutor", "merge_betas", "set_header"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com"
ANTHROPIC_VERSION: Final = "2023-06-01"
USER_AGENT: Final = "cliproxy-claude"

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header replacing any spelling of the same name, so httpx never sends two of them."""
    low = name.lower()
    for existing in [k for k in headers if k.lower() == low]:
        del headers[existing]
    headers[name] = value


def merge_betas(*groups: str | tuple[str, ...] | None) -> str:
    """Comma-joined, de-duplicated ``anthropic-beta`` values in first-seen order."""
    out: list[str] = []
    for group in groups:
        if not group:
            continue
        items = group.split(",") if isinstance(group, str) else group
        for item in items:
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return ",".join(out)


class ClaudeExecutor(HttpExecutor):
    name = "claude"
    wire_format = "claude"

    # ------------------------------------------------------------------ extension points (OAuth issue)

    def required_betas(self, call: UpstreamCall, cred: Credential) -> tuple[str, ...]:
        """Betas this credential needs on every call; API keys need none (OAuth adds ``oauth-2025-04-20`` ...)."""
        return ()

    def fingerprint_headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        """Client-identity headers; API keys send none, Claude Code OAuth tokens send the CLI's set."""
        return {}

    def rewrite_body(self, data: dict[str, Any], call: UpstreamCall, cred: Credential) -> bool:
        """Edit the decoded body in place and return ``True`` if it changed.

        Hook point for the Claude Code identity system block, which only OAuth tokens need: API-key bodies are
        sent as the client (or codec) wrote them.
        """
        return False

    def needs_body_rewrite(self, call: UpstreamCall, cred: Credential) -> bool:
        """Whether :meth:`rewrite_body` must run; ``False`` keeps the body bytes untouched (no decode)."""
        return False

    # ------------------------------------------------------------------ HttpExecutor hooks

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        base = (cred.base_url or DEFAULT_BASE_URL).rstrip("/")
        path = "/v1/messages/count_tokens" if call.action == "count_tokens" else "/v1/messages"
        return f"{base}{path}?beta=true"

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        streaming = call.stream and call.action != "count_tokens"
        headers: dict[str, str] = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if streaming else "application/json",
            "User-Agent": USER_AGENT,
        }
        # A Claude client's own version and betas are honoured; other dialects never had any to send.
        client: Mapping[str, str] = call.client_headers if call.client_format == "claude" else {}
        headers["Anthropic-Version"] = client.get("anthropic-version") or ANTHROPIC_VERSION
        betas = merge_betas(client.get("anthropic-beta"), self.required_betas(call, cred))
        if betas:
            headers["Anthropic-Beta"] = betas
        for name, value in self.fingerprint_headers(call, cred).items():
            set_header(headers, name, value)
        for name, value in self.auth_headers(cred).items():
            set_header(headers, name, value)
        for name, value in cred.headers.items():
            set_header(headers, name, value)
        return headers

    def auth_headers(self, cred: Credential) -> dict[str, str]:
        """``x-api-key`` for Anthropic API keys, ``Authorization: Bearer`` for OAuth tokens and other hosts.

        The reference sent Bearer for everything; api.anthropic.com wants ``x-api-key`` for API keys, while
        third-party Anthropic-compatible hosts accept Bearer (and ``sk-ant-oat`` OAuth tokens pasted as keys
        must stay Bearer).
        """
        token = cred.api_key or cred.metadata.get("access_token")
        if not token or not isinstance(token, str):
            return {}
        if cred.api_key and _is_api_key(cred.api_key, cred.base_url):
            return {"x-api-key": token}
        return {"Authorization": f"Bearer {token}"}

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        counting = call.action == "count_tokens"
        # A translated body is a full create request; the count endpoint rejects the create-only fields.
        body = CLAUDE.count_tokens_request(call.body, call.model) if counting else call.body
        if not counting and not self.needs_body_rewrite(call, cred):
            return body
        try:
            data = _decode(body)
        except msgspec.DecodeError:
            return body  # let the upstream report the broken body in its own words
        if not isinstance(data, dict):
            return body
        return _encode(data) if self.rewrite_body(data, call, cred) else body

    def first_event_error(self, ev: SSEEvent) -> UpstreamError | None:
        """An ``event: error`` before any content is raised, so the request can still fail over (529 ...)."""
        return _stream_error(ev.data) if ev.event == "error" else None


def _is_api_key(key: str, base_url: str | None) -> bool:
    if key.startswith("sk-ant-oat"):
        return False
    if key.startswith("sk-ant-api"):
        return True
    host = urlsplit(base_url or DEFAULT_BASE_URL).hostname or ""
    return host == "api.anthropic.com"


def _stream_error(data: bytes) -> UpstreamError:
    kind = ""
    try:
        obj = _decode(data)
    except msgspec.DecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        kind = str(obj["error"].get("type") or "")
    known = error_status(kind)
    status = known[0] if known is not None else 502
    return UpstreamError(status, upstream_message(data, "upstream stream failed"), body=data)
