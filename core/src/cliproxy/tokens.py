"""Local token estimates, for upstreams without a count endpoint.

Counts read from upstreams that have one, and the count answer each client expects, are dialect shapes owned
by the codecs (``Codec.decode_count_tokens_response`` / ``encode_count_tokens_response``). No tokenizer data
can be downloaded at run time, so the local estimate is a calibrated heuristic (about four characters per
token for prose, denser for code and CJK text), not an exact BPE count.
"""

from __future__ import annotations

import re

import msgspec

from . import ir

__all__ = ["estimate_request", "estimate_text"]

_encode = msgspec.json.encode
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)
#: Tokens an image costs in the major tokenizers (order of magnitude; providers differ).
IMAGE_TOKENS = 258


def estimate_text(text: str) -> int:
    if not text:
        return 0
    pieces = len(_WORDS.findall(text))
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return max(1, int(max(len(text) / 4.0, pieces * 0.75) + wide * 0.6))


def estimate_request(req: ir.Request) -> int:
    total = 3
    for part in req.system:
        total += estimate_text(part.text)
    for msg in req.messages:
        total += 4
        for p in msg.parts:
            if isinstance(p, (ir.TextPart, ir.ReasoningPart)):
                total += estimate_text(p.text)
            elif isinstance(p, ir.ImagePart):
                total += IMAGE_TOKENS
            elif isinstance(p, ir.ToolCallPart):
                total += estimate_text(p.name) + estimate_text(p.arguments)
            elif isinstance(p, ir.ToolResultPart):
                for c in p.content:
                    total += estimate_text(c.text) if isinstance(c, ir.TextPart) else IMAGE_TOKENS
    for tool in req.tools:
        total += estimate_text(tool.name) + estimate_text(tool.description or "")
        if tool.parameters:
            total += estimate_text(_encode(tool.parameters).decode())
    return total
