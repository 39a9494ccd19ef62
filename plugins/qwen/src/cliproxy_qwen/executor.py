"""Executor for Qwen Code accounts: OpenAI Chat Completions at the account's ``resource_url``.

Qwen's token answer names the host that serves the account (``resource_url``, e.g. ``portal.qwen.ai``); chat
goes to ``https://<resource_url>/v1/chat/completions``, or to ``endpoints.qwen.api-url`` + ``/chat/completions``
when that is set. Requests carry the headers Qwen Code itself sends (its OpenAI-SDK fingerprint plus the
DashScope ones), so the account is used the way its owner's CLI uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError
from cliproxy.oauth import endpoint
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.upstream import HttpExecutor

from .models import PROVIDER

__all__ = ["DEFAULT_BASE_URL", "EXECUTOR", "PLACEHOLDER_TOOL", "QwenExecutor", "base_url_for", "until_quota_reset"]

EXECUTOR: Final = "qwen"
DEFAULT_BASE_URL: Final = "https://portal.qwen.ai/v1"
USER_AGENT: Final = "QwenCode/0.10.3 (darwin; arm64)"

#: What Qwen Code sends on every chat call (the OpenAI Node SDK's ``X-Stainless-*`` plus DashScope's own).
QWEN_CODE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
    "X-DashScope-UserAgent": USER_AGENT,
    "X-DashScope-CacheControl": "enable",
    "X-DashScope-AuthType": "qwen-oauth",
    "X-Stainless-Lang": "js",
    "X-Stainless-Package-Version": "5.11.0",
    "X-Stainless-OS": "MacOS",
    "X-Stainless-Arch": "arm64",
    "X-Stainless-Runtime": "node",
    "X-Stainless-Runtime-Version": "v22.17.0",
    "X-Stainless-Retry-Count": "0",
    "Sec-Fetch-Mode": "cors",
}

#: Qwen3 models stream stray tokens when a request defines no tools; a tool nobody will call stops that.
PLACEHOLDER_TOOL: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "do_not_call_me",
        "description": "Do not call this tool under any circumstances, it will have catastrophic consequences.",
        "parameters": {
            "type": "object",
            "properties": {
                "operation": {"type": "number", "description": "1:poweroff\n2:rm -fr /\n3:mkfs.ext4 /dev/sda1"}
            },
            "required": ["operation"],
        },
    },
}

#: Qwen answers an exhausted daily quota with 403 (sometimes 429) and one of these codes.
_QUOTA_CODES: Final = frozenset({"insufficient_quota", "quota_exceeded"})
#: The free quota resets at midnight in Beijing (UTC+8, no daylight saving).
_BEIJING: Final = timezone(timedelta(hours=8))

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def base_url_for(resource_url: str) -> str:
    """``portal.qwen.ai`` → ``https://portal.qwen.ai/v1``: a scheme is added when missing, ``/v1`` once."""
    value = resource_url.strip().rstrip("/")
    if not value:
        return DEFAULT_BASE_URL
    if "://" not in value:
        value = "https://" + value
    return value if value.endswith("/v1") else value + "/v1"


def until_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight in Beijing, when Qwen's daily free quota comes back."""
    local = (now or datetime.now(_BEIJING)).astimezone(_BEIJING)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max((midnight - local).total_seconds(), 1.0)


def _is_quota(body: bytes) -> bool:
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return False
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return False
    if str(err.get("code") or "").lower() in _QUOTA_CODES or str(err.get("type") or "").lower() in _QUOTA_CODES:
        return True
    message = str(err.get("message") or "").lower()
    return "insufficient_quota" in message or "quota exceeded" in message


class QwenExecutor(HttpExecutor):
    name = EXECUTOR
    wire_format = "openai"
    #: Add :data:`PLACEHOLDER_TOOL` to streams without tools (CLIProxyAPI's workaround); subclass to turn off.
    stream_tool_workaround = True

    def __init__(self, services: ExecutorServices) -> None:
        super().__init__(services.http)
        #: Live view: a config reload swaps ``services.settings`` (``endpoints.qwen.api-url``).
        self.services = services

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        base = endpoint(self.services.settings, PROVIDER, "api-url", "") or cred.base_url or DEFAULT_BASE_URL
        return base.rstrip("/") + "/chat/completions"

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        token = cred.api_key or cred.metadata.get("access_token")
        if not isinstance(token, str) or not token:
            # 401: the pipeline refreshes the token once, then fails over to another account.
            raise UpstreamError(401, "this Qwen credential has no access token; run 'cliproxy login qwen' again")
        headers = dict(QWEN_CODE_HEADERS)
        headers["Authorization"] = f"Bearer {token}"
        headers["Accept"] = "text/event-stream" if call.stream else "application/json"
        headers.update(cred.headers)
        return headers

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        """Streams: the placeholder tool when none are defined, and usage in the last chunk."""
        if not call.stream or call.action != "generate":
            return call.body
        try:
            body = _decode(call.body)
        except msgspec.DecodeError:
            return call.body
        if not isinstance(body, dict):
            return call.body
        tools = body.get("tools")
        if self.stream_tool_workaround and (not isinstance(tools, list) or not tools):
            body["tools"] = [PLACEHOLDER_TOOL]
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return _encode(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """An exhausted daily quota (403) becomes a 429 that rests the account until the quota resets."""
        err = super().error(status, headers, body)
        if status in (403, 429) and _is_quota(body):
            return UpstreamError(429, err.message, body=body, retry_after=until_quota_reset())
        return err
