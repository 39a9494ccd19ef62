"""Executor for the Anthropic Messages API: ``POST <base>/v1/messages?beta=true`` (and ``/count_tokens``).

One executor serves both kinds of Claude credentials, told apart by :func:`is_oauth` everywhere (at load, at
reload, after a refresh) so a credential never switches between the two behaviours:

* API keys (``claude-api-key``): ``x-api-key`` on api.anthropic.com, the body as the client (or codec) wrote it.
* Claude Code subscription tokens (``type: claude`` auth files, or an ``sk-ant-oat`` token pasted as a key):
  ``Authorization: Bearer``, the ``oauth-2025-04-20`` beta merged into the client's betas, Claude Code's
  headers, and its identity line prepended to the system prompt (see :mod:`.claude_code`). Their base URL is
  ``endpoints.claude.api-url``.
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
from cliproxy.http import HttpClients
from cliproxy.oauth import endpoint
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.sse import SSEEvent
from cliproxy.upstream import HttpExecutor, retry_after_header

from . import claude_code
from .ratelimit import ratelimit_reset

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASE_URL",
    "ClaudeExecutor",
    "access_token",
    "is_oauth",
    "merge_betas",
    "set_header",
]

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


def access_token(cred: Credential) -> str | None:
    """The OAuth access token of a subscription credential (auth files keep it in the metadata)."""
    token = cred.metadata.get("access_token")
    return token if isinstance(token, str) and token else None


def is_oauth(cred: Credential) -> bool:
    """Is ``cred`` a Claude Code subscription token? The one test every code path uses."""
    if cred.api_key:
        return cred.api_key.startswith("sk-ant-oat")
    return access_token(cred) is not None


class ClaudeExecutor(HttpExecutor):
    name = "claude"
    wire_format = "claude"

    def __init__(self, http: HttpClients, services: ExecutorServices | None = None) -> None:
        super().__init__(http)
        #: Live settings holder (a config reload swaps ``services.settings``): ``endpoints.claude.api-url``.
        self.services = services

    # ------------------------------------------------------------------ what OAuth credentials add

    def required_betas(self, call: UpstreamCall, cred: Credential) -> tuple[str, ...]:
        """Betas this credential needs on every call: none for API keys, ``oauth-2025-04-20`` ... for OAuth."""
        return claude_code.oauth_betas(call) if is_oauth(cred) else ()

    def fingerprint_headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        """Client-identity headers: none for API keys, Claude Code's for OAuth tokens."""
        return claude_code.fingerprint(call) if is_oauth(cred) else {}

    def rewrite_body(self, data: dict[str, Any], call: UpstreamCall, cred: Credential) -> bool:
        """Prepend Claude Code's identity to an OAuth call's system prompt; API-key bodies stay as written."""
        return is_oauth(cred) and claude_code.with_identity(data, call.body)

    def needs_body_rewrite(self, call: UpstreamCall, cred: Credential) -> bool:
        """Only an OAuth call whose prompt lacks the identity is decoded; everything else goes out as is."""
        return is_oauth(cred) and not claude_code.system_has_identity(call.body)

    def base_url(self, cred: Credential) -> str:
        if cred.base_url:
            return cred.base_url
        if self.services is not None and is_oauth(cred):
            return endpoint(self.services.settings, "claude", "api-url", DEFAULT_BASE_URL)
        return DEFAULT_BASE_URL

    # ------------------------------------------------------------------ HttpExecutor hooks

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        base = self.base_url(cred).rstrip("/")
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
        token = cred.api_key or access_token(cred)
        if not token:
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

    def retry_after_hint(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """``Retry-After``, else when the exhausted ``anthropic-ratelimit-*`` window reopens: a subscription's
        used-up 5-hour window answers 429 without ``Retry-After``, so the headers are the only hint."""
        if status != 429 or retry_after_header(headers) is not None:
            return super().retry_after_hint(status, headers, body)
        reset = ratelimit_reset(headers)
        return reset if reset is not None else super().retry_after_hint(status, headers, body)

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
