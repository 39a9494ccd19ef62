"""Executor for iFlow accounts: OpenAI Chat Completions at ``apis.iflow.cn/v1`` with the account's API key.

The OAuth login only serves to obtain that API key (``getUserInfo``); chat calls carry it as the bearer token,
with iFlow CLI's ``User-Agent``. ``endpoints.iflow.api-url`` (or a ``base_url`` in the auth file) moves them.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError
from cliproxy.oauth import endpoint
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.upstream import HttpExecutor

from .models import PROVIDER, thinking_switch

__all__ = ["DEFAULT_BASE_URL", "EXECUTOR", "NOOP_TOOL", "IFlowExecutor", "apply_thinking"]

EXECUTOR: Final = "iflow"
DEFAULT_BASE_URL: Final = "https://apis.iflow.cn/v1"
USER_AGENT: Final = "iFlow-Cli"

#: A stream with an empty ``tools`` list trips the same model quirk as Qwen's tool-less streams; CLIProxyAPI sends
#: this one harmless tool instead, and so do we.
NOOP_TOOL: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "noop",
        "description": "Placeholder tool to stabilise streaming",
        "parameters": {"type": "object"},
    },
}

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def apply_thinking(body: dict[str, Any], model: str) -> bool:
    """Turn ``reasoning_effort`` into the model's own thinking switch (see :mod:`.models`); True if changed.

    The effort word itself is removed: the models behind iFlow do not know it.
    """
    if "reasoning_effort" not in body:
        return False
    effort = body.pop("reasoning_effort")
    on = isinstance(effort, str) and effort.strip().lower() not in ("none", "")
    switch = thinking_switch(model)
    if switch == "reasoning_split":
        body["reasoning_split"] = on
    elif switch is not None:
        kwargs = body.get("chat_template_kwargs")
        kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
        kwargs["enable_thinking"] = on
        kwargs.pop("clear_thinking", None)
        if switch == "glm" and on:
            kwargs["clear_thinking"] = False
        body["chat_template_kwargs"] = kwargs
    return True


class IFlowExecutor(HttpExecutor):
    name = EXECUTOR
    wire_format = "openai"

    def __init__(self, services: ExecutorServices) -> None:
        super().__init__(services.http)
        #: Live view: a config reload swaps ``services.settings`` (``endpoints.iflow.api-url``).
        self.services = services

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        base = endpoint(self.services.settings, PROVIDER, "api-url", "") or cred.base_url or DEFAULT_BASE_URL
        return base.rstrip("/") + "/chat/completions"

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        key = cred.api_key or cred.metadata.get("api_key")
        if not isinstance(key, str) or not key:
            # 401: the pipeline refreshes once (which fetches the API key again), then fails over.
            raise UpstreamError(401, "this iFlow credential has no API key; run 'cliproxy login iflow' again")
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if call.stream else "application/json",
        }
        headers.update(cred.headers)
        return headers

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        """Thinking switches per model; on streams an empty ``tools`` list gets the placeholder tool."""
        raw = call.body
        effort = b'"reasoning_effort"' in raw
        tools = call.stream and b'"tools"' in raw
        if call.action != "generate" or not (effort or tools):
            return raw
        try:
            body = _decode(raw)
        except msgspec.DecodeError:
            return raw
        if not isinstance(body, dict):
            return raw
        changed = apply_thinking(body, call.model) if effort else False
        if tools and body.get("tools") == []:
            body["tools"] = [NOOP_TOOL]
            changed = True
        return _encode(body) if changed else raw
