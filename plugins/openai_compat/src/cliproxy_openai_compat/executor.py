"""Executor for ``openai-compatibility`` entries: ``POST <base-url>/chat/completions``."""

from __future__ import annotations

from cliproxy.credentials import Credential
from cliproxy.protocols import UpstreamCall
from cliproxy.upstream import HttpExecutor

__all__ = ["OpenAICompatExecutor"]

USER_AGENT = "cliproxy-openai-compat"


class OpenAICompatExecutor(HttpExecutor):
    name = "openai-compat"
    wire_format = "openai"

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        return (cred.base_url or "").rstrip("/") + "/chat/completions"

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if call.stream:
            headers["Accept"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
        headers.update(cred.headers)
        if cred.api_key:
            headers["Authorization"] = f"Bearer {cred.api_key}"
        return headers
