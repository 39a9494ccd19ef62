"""What a Claude Code subscription (OAuth) token needs on the Messages API.

Anthropic serves Claude Pro/Max OAuth tokens to Claude Code only: a call must carry ``Authorization: Bearer``
(an ``x-api-key`` is refused), the ``oauth-2025-04-20`` beta, and a system prompt that opens with Claude Code's
identity line. CLIProxyAPI replaced the client's whole system prompt with that line, so native Claude clients
silently lost their own instructions; here the line is *prepended* and the client's blocks follow unchanged.
A request from Claude Code itself already opens with one of its identity lines and carries its own
fingerprint headers, so neither is duplicated nor overwritten.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from cliproxy.protocols import UpstreamCall

__all__ = [
    "CLAUDE_CODE_BETA",
    "CLAUDE_CODE_VERSION",
    "DEFAULT_BETAS",
    "FINGERPRINT",
    "IDENTITY",
    "OAUTH_BETA",
    "fingerprint",
    "has_identity",
    "is_claude_code",
    "oauth_betas",
    "system_has_identity",
    "with_identity",
]

#: The Claude Code release whose wire behaviour the defaults below copy.
CLAUDE_CODE_VERSION: Final = "2.1.197"
OAUTH_BETA: Final = "oauth-2025-04-20"
CLAUDE_CODE_BETA: Final = "claude-code-20250219"
#: The other betas Claude Code enables, sent for clients that named none of their own.
DEFAULT_BETAS: Final = ("interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14")

IDENTITY: Final = "You are Claude Code, Anthropic's official CLI for Claude."
#: How Claude Code's own identity lines start (interactive, inside the Agent SDK, headless ``-p`` agent).
_IDENTITY_PREFIXES: Final = (
    "You are Claude Code, Anthropic's official CLI for Claude",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK",
)
#: Claude Code puts a billing line before its identity; it does not count as the prompt's first block.
_BILLING_PREFIX: Final = "x-anthropic-billing-header:"
#: Anthropic accepts at most this many ``cache_control`` breakpoints per request.
_MAX_CACHE_BREAKPOINTS: Final = 4

#: Headers Claude Code sends on every Messages call (its bundled SDK's ``X-Stainless-*`` set included).
FINGERPRINT: Final[dict[str, str]] = {
    "User-Agent": f"claude-cli/{CLAUDE_CODE_VERSION} (external, cli)",
    "X-App": "cli",
    "Anthropic-Dangerous-Direct-Browser-Access": "true",
    "X-Stainless-Lang": "js",
    "X-Stainless-Package-Version": "0.94.0",
    "X-Stainless-OS": "Linux",
    "X-Stainless-Arch": "x64",
    "X-Stainless-Runtime": "node",
    "X-Stainless-Runtime-Version": "v24.3.0",
    "X-Stainless-Retry-Count": "0",
    "X-Stainless-Timeout": "600",
}
#: Fingerprint headers taken from the client when the client is Claude Code (canonical spelling by name).
_CLIENT_FINGERPRINT: Final = {
    **{name.lower(): name for name in FINGERPRINT},
    "x-claude-code-session-id": "X-Claude-Code-Session-Id",
    "x-stainless-helper-method": "X-Stainless-Helper-Method",
}


def is_claude_code(call: UpstreamCall) -> bool:
    """Is the client Claude Code itself (its User-Agent is ``claude-cli/<version> ...``)?"""
    return call.client_format == "claude" and call.client_headers.get("user-agent", "").startswith("claude-cli/")


def fingerprint(call: UpstreamCall) -> dict[str, str]:
    """Claude Code's headers: the client's own when it is Claude Code, else this release's defaults."""
    headers = dict(FINGERPRINT)
    if is_claude_code(call):
        for low, name in _CLIENT_FINGERPRINT.items():
            value = call.client_headers.get(low, "").strip()
            if value:
                headers[name] = value
    elif call.stream and call.action != "count_tokens":
        headers["X-Stainless-Helper-Method"] = "stream"
    return headers


def oauth_betas(call: UpstreamCall) -> tuple[str, ...]:
    """Betas an OAuth call adds to the client's own (the executor merges and de-duplicates them)."""
    named = call.client_format == "claude" and bool(call.client_headers.get("anthropic-beta", "").strip())
    return (CLAUDE_CODE_BETA, OAUTH_BETA) if named else (CLAUDE_CODE_BETA, OAUTH_BETA, *DEFAULT_BETAS)


def has_identity(system: Any) -> bool:
    """Does ``system`` (a string or a list of blocks) already open with a Claude Code identity line?"""
    if isinstance(system, str):
        return system.lstrip().startswith(_IDENTITY_PREFIXES)
    if not isinstance(system, list):
        return False
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            return False
        text = block.get("text")
        if not isinstance(text, str):
            return False
        text = text.lstrip()
        if text.startswith(_BILLING_PREFIX):
            continue
        return text.startswith(_IDENTITY_PREFIXES)
    return False


class _SystemOnly(msgspec.Struct):
    system: Any = None


_system_decoder = msgspec.json.Decoder(_SystemOnly)


def system_has_identity(body: bytes) -> bool:
    """:func:`has_identity` on a raw body; only ``system`` is materialised, so Claude Code's large requests
    pass without being decoded and re-encoded."""
    try:
        return has_identity(_system_decoder.decode(body).system)
    except msgspec.MsgspecError:
        return False


def with_identity(data: dict[str, Any], body: bytes) -> bool:
    """Prepend the identity block to ``data["system"]`` unless it is already there; ``True`` if changed.

    A string prompt becomes one text block after the identity; a block list keeps every block (and its
    ``cache_control``). The identity block is cached too while the request stays under Anthropic's limit of
    four cache breakpoints.
    """
    system = data.get("system")
    if has_identity(system):
        return False
    block: dict[str, Any] = {"type": "text", "text": IDENTITY}
    if body.count(b'"cache_control"') < _MAX_CACHE_BREAKPOINTS:
        block["cache_control"] = {"type": "ephemeral"}
    if system is None or system == "" or system == []:
        data["system"] = [block]
    elif isinstance(system, str):
        data["system"] = [block, {"type": "text", "text": system}]
    elif isinstance(system, list):
        data["system"] = [block, *system]
    else:
        return False  # not a prompt Anthropic accepts: let it say so in its own words
    return True
