"""Executor for the Gemini API (Generative Language) with API keys.

``POST <base>/v1beta/models/<model>:generateContent`` / ``:streamGenerateContent?alt=sse`` / ``:countTokens``.
Bodies are post-processed before they go out: ``session_id`` (Gemini CLI bookkeeping) is dropped, a
``-thinking-N`` / ``-nothinking`` model suffix overrides the thinking budget, ``thinkingConfig`` is removed for
models without thinking support, and count requests are reshaped by the Gemini codec for ``:countTokens``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import msgspec

from cliproxy.credentials import Credential
from cliproxy.formats.gemini import shape_count_tokens_request
from cliproxy.protocols import UpstreamCall
from cliproxy.thinking import normalize_budget
from cliproxy.upstream import HINT_SCAN_BYTES, HttpExecutor, hint_seconds, retry_after_header, retry_hint_in_text

from .models import by_id, model_rule

__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "GeminiExecutor", "split_model"]

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"
API_VERSION: Final = "v1beta"

#: Google's 429 bodies say when to come back in ``RetryInfo.retryDelay`` (``"38s"``) or ``quotaResetDelay``.
_RETRY_DELAY: Final = re.compile(rb'"(?:retryDelay|quotaResetDelay)"\s*:\s*"([0-9.]+)(ms|s)"')

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def split_model(model: str) -> tuple[str, int | None, bool | None]:
    """``(base model, budget override, include_thoughts override)`` from a thinking-suffixed model name.

    Requests for suffixed names are resolved before they reach the executor; a suffix still here came from a
    configured alias whose upstream name carries it (``models: [{name: gemini-2.5-pro-nothinking, ...}]``).
    """
    name = model.removeprefix("models/")
    hit = model_rule(name)
    if hit is None:
        return name, None, None
    base, cfg = hit
    return base, cfg.budget, cfg.include_thoughts


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    low = name.lower()
    for existing in [k for k in headers if k.lower() == low]:
        del headers[existing]
    headers[name] = value


def _pick(data: dict[str, Any], *names: str) -> str | None:
    for n in names:
        if n in data:
            return n
    return None


class GeminiExecutor(HttpExecutor):
    name = "gemini"
    wire_format = "gemini"

    def url(self, call: UpstreamCall, cred: Credential) -> str:
        base = (cred.base_url or DEFAULT_BASE_URL).rstrip("/")
        model = quote(split_model(call.model)[0], safe="")
        if call.action == "count_tokens":
            return f"{base}/{API_VERSION}/models/{model}:countTokens"
        if call.stream:
            return f"{base}/{API_VERSION}/models/{model}:streamGenerateContent?alt=sse"
        return f"{base}/{API_VERSION}/models/{model}:generateContent"

    def retry_after_hint(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        """``Retry-After`` if sent, else the ``retryDelay`` Google puts in the error details, else the message."""
        if status != 429:
            return None
        hint = retry_after_header(headers)
        if hint is None:
            m = _RETRY_DELAY.search(body[:HINT_SCAN_BYTES])
            hint = hint_seconds(m) if m else retry_hint_in_text(body)
        return hint

    def headers(self, call: UpstreamCall, cred: Credential) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if cred.api_key:
            headers["x-goog-api-key"] = cred.api_key
        else:
            token = cred.metadata.get("access_token")
            if isinstance(token, str) and token:
                headers["Authorization"] = f"Bearer {token}"
        for name, value in cred.headers.items():  # configured headers win, as in the reference
            _set_header(headers, name, value)
        return headers

    def prepare(self, call: UpstreamCall, cred: Credential) -> bytes:
        try:
            data = _decode(call.body)
        except msgspec.DecodeError:
            return call.body  # the upstream reports a broken body better than we can
        if not isinstance(data, dict):
            return call.body
        model, budget, include = split_model(call.model)
        # Gemini CLI's session id (either spelling) is client bookkeeping the Gemini API rejects.
        changed = "session_id" in data or "sessionId" in data
        data.pop("session_id", None)
        data.pop("sessionId", None)
        if call.action == "count_tokens":
            changed = shape_count_tokens_request(data, model) or changed
            return _encode(data) if changed else call.body
        info = by_id(model)
        if info is not None and info.thinking is None:
            changed = _strip_thinking(data) or changed
        elif budget is not None and info is not None and info.thinking is not None:
            _override_thinking(data, normalize_budget(budget, info.thinking), include)
            changed = True
        return _encode(data) if changed else call.body


def _generation_config(data: dict[str, Any], create: bool) -> dict[str, Any] | None:
    key = _pick(data, "generationConfig", "generation_config")
    if key is None:
        if not create:
            return None
        key = "generationConfig"
        data[key] = {}
    gc = data[key]
    return gc if isinstance(gc, dict) else None


def _strip_thinking(data: dict[str, Any]) -> bool:
    gc = _generation_config(data, create=False)
    if gc is None:
        return False
    changed = False
    for key in ("thinkingConfig", "thinking_config"):
        if key in gc:
            del gc[key]
            changed = True
    return changed


def _override_thinking(data: dict[str, Any], budget: int, include: bool | None) -> None:
    gc = _generation_config(data, create=True)
    if gc is None:
        return
    key = _pick(gc, "thinkingConfig", "thinking_config") or "thinkingConfig"
    tc = gc.get(key)
    if not isinstance(tc, dict):
        tc = gc[key] = {}
    for k in ("thinking_budget", "thinkingLevel", "thinking_level"):
        tc.pop(k, None)
    tc["thinkingBudget"] = budget
    if include is not None:
        tc.pop("include_thoughts", None)
        tc["includeThoughts"] = include
