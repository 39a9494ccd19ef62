"""Function names shortened to Codex's 64-character limit, and restored in answers.

The Codex (ChatGPT backend) upstream rejects longer function names, so long names are shortened
deterministically on encode and restored from the request's tool list on decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ... import ir

__all__ = ["restore_tool_name", "reverse_names", "shorten_tool_names"]

_MAX_NAME: Final = 64


# --------------------------------------------------------------------------------------------- tool names


def _short(name: str) -> str:
    if len(name) <= _MAX_NAME:
        return name
    if name.startswith("mcp__"):
        tail = name[name.rfind("__") + 2 :]
        return ("mcp__" + tail)[:_MAX_NAME]
    return name[:_MAX_NAME]


def shorten_tool_names(names: Iterable[str]) -> dict[str, str]:
    """Original → upstream name for every name longer than Codex's 64-character limit.

    ``mcp__server__tool`` keeps ``mcp__`` + the part after the last ``__``; collisions get ``_1``, ``_2`` …
    (``~`` suffixes are rejected by OpenAI, 1ba057112). Deterministic for a given tool list.
    """
    ordered = list(dict.fromkeys(names))
    taken = {n for n in ordered if len(n) <= _MAX_NAME}
    out: dict[str, str] = {}
    for name in ordered:
        if len(name) <= _MAX_NAME:
            continue
        cand = _short(name)
        i = 1
        while cand in taken:
            suffix = f"_{i}"
            cand = _short(name)[: _MAX_NAME - len(suffix)] + suffix
            i += 1
        taken.add(cand)
        out[name] = cand
    return out


def restore_tool_name(name: str, tools: Iterable[ir.Tool]) -> str:
    """The client's original name for a (possibly shortened) function name in an upstream answer."""
    reverse = {v: k for k, v in shorten_tool_names(t.name for t in tools).items()}
    return reverse.get(name, name)


def reverse_names(req: ir.Request | None) -> dict[str, str]:
    if req is None:
        return {}
    return {v: k for k, v in shorten_tool_names(t.name for t in req.tools).items()}
