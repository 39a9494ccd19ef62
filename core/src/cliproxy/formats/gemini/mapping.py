"""Mappings shared by Gemini requests, responses and streams: function names and ids, finish reasons, usage,
timestamps, arguments and data URLs.

Gemini has no tool-call ids (older models), so ids are minted here deterministically; function names must
match Gemini's pattern, so names are sanitised deterministically and restored from the request's tools.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from ... import ir
from .wire import UsageMetadata, _decode_any, _dumps

__all__ = ["name_map", "restore_function_name", "sanitize_function_name"]


_VALID_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
_INVALID_CHARS: Final = re.compile(r"[^A-Za-z0-9_.:-]")


def sanitize_function_name(name: str) -> str:
    """Deterministically map a tool name onto Gemini's allowed pattern (a letter or ``_`` first, then at most
    63 letters, digits, ``_ . : -``).

    Deterministic, so a response can be mapped back with :func:`restore_function_name` from the request's
    tools alone.
    """
    if _VALID_NAME.match(name):
        return name
    out = _INVALID_CHARS.sub("_", name) or "_"
    if not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    if len(out) > 64:
        digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
        out = out[:55] + "_" + digest
    return out


def restore_function_name(name: str, tools: Iterable[ir.Tool]) -> str:
    """The client's original tool name for a (possibly sanitised) name Gemini answered with."""
    for tool in tools:
        if tool.name == name:
            return name
        if sanitize_function_name(tool.name) == name:
            return tool.name
    return name


def name_map(req: ir.Request | None) -> dict[str, str]:
    """Sanitised → original name of every tool of ``req`` whose name Gemini would not accept."""
    if req is None:
        return {}
    out: dict[str, str] = {}
    for tool in req.tools:
        clean = sanitize_function_name(tool.name)
        if clean != tool.name:
            out[clean] = tool.name
    return out


def _mint_id(*seed: object) -> str:
    """Deterministic ``call_<24 hex>`` id: same history ⇒ same ids, so retries and caches stay stable."""
    raw = "\x1f".join(str(s) for s in seed).encode()
    return "call_" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def _random_id() -> str:
    return "call_" + secrets.token_hex(12)


# --------------------------------------------------------------------------------------------- small mappings

_FILTER_REASONS: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
_TO_NATIVE: Final[dict[str, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "error": "OTHER",
}


def _finish_reason(native: str | None, saw_tool_call: bool) -> ir.FinishReason:
    """A function call anywhere in the answer wins over ``STOP`` (Gemini reports ``STOP`` after calls too)."""
    if saw_tool_call:
        return "tool_calls"
    if native is None or native in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        return "stop"
    if native == "MAX_TOKENS":
        return "length"
    if native in _FILTER_REASONS:
        return "content_filter"
    if native in ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"):
        return "error"
    return "stop"


def _usage_to_ir(u: UsageMetadata) -> ir.Usage:
    """``candidatesTokenCount`` excludes thoughts; IR ``output_tokens`` includes reasoning (as OpenAI counts)."""
    thoughts = u.thoughts_token_count or 0
    return ir.Usage(
        input_tokens=(u.prompt_token_count or 0) + (u.tool_use_prompt_token_count or 0),
        output_tokens=(u.candidates_token_count or 0) + thoughts,
        cached_tokens=u.cached_content_token_count or 0,
        reasoning_tokens=thoughts,
    )


def _usage_from_ir(u: ir.Usage) -> UsageMetadata:
    reasoning = min(u.reasoning_tokens, u.output_tokens)
    return UsageMetadata(
        prompt_token_count=u.input_tokens,
        candidates_token_count=u.output_tokens - reasoning,
        thoughts_token_count=reasoning or None,
        cached_content_token_count=u.cached_tokens or None,
        total_token_count=u.input_tokens + u.output_tokens,
    )


def _parse_time(value: str | None) -> int:
    if not value or len(value) < 19:
        return 0
    try:
        return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0


def _format_time(ts: int) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts > 0 else None


def _args_text(args: dict[str, Any] | None) -> str:
    return _dumps(args) if args else "{}"


def _args_object(text: str) -> dict[str, Any]:
    """Gemini needs an args *object*; invalid or non-object JSON degrades to ``{}`` rather than a 400."""
    if not text or text.isspace():
        return {}
    try:
        value = _decode_any(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); other URLs (and non-base64 data URLs) → ``None``."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep:
        return None
    mime, _, enc = head.partition(";")
    if enc != "base64":
        return None
    return mime or "application/octet-stream", data
