"""When an exhausted Anthropic rate-limit window reopens, read from the ``anthropic-ratelimit-*`` headers.

Two families exist. API keys get ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
{limit,remaining,reset}`` with RFC 3339 reset times. Claude subscriptions (OAuth) get the "unified" family:
``anthropic-ratelimit-unified[-5h|-7d|...]-{status,reset}`` with epoch-second resets and ``status: rejected``
on the window that ran out. A 429 from a used-up 5-hour window often has no ``Retry-After`` at all, so
without these headers the account would be retried after a short backoff again and again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from cliproxy.refresh import parse_time

__all__ = ["ratelimit_reset"]

_PREFIX: Final = "anthropic-ratelimit-"
_RESET: Final = "-reset"


def ratelimit_reset(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until the exhausted window(s) reopen; ``None`` when the headers say nothing usable.

    Exhausted windows (``-remaining: 0`` or ``-status: rejected``) must all reopen, so the latest of their
    resets wins; when none is marked exhausted the earliest reset is the best guess.
    """
    low = {k.lower(): v.strip() for k, v in headers.items() if k.lower().startswith(_PREFIX)}
    if not low:
        return None
    now = time.time() if now is None else now
    exhausted: list[float] = []
    others: list[float] = []
    for name, value in low.items():
        if not name.endswith(_RESET):
            continue
        at = parse_time(value)
        if at is None:
            continue
        window = name[: -len(_RESET)]
        if low.get(window + "-remaining") == "0" or low.get(window + "-status") == "rejected":
            exhausted.append(at - now)
        else:
            others.append(at - now)
    if exhausted:
        return max(max(exhausted), 0.0)
    if others:
        return max(min(others), 0.0)
    return None
