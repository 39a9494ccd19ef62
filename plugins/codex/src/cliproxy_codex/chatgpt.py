"""What the ChatGPT Codex backend (``chatgpt.com/backend-api/codex``) demands of a Responses request.

It is the Responses API with a subscription's rules: it only streams (``stream`` must be true), keeps nothing
(``store`` must be false, so ``previous_response_id`` cannot point anywhere), manages output length and
sampling itself (``max_output_tokens``, ``temperature``, ``top_p`` are refused), and requires a non-empty
``instructions``. It answers ``{"detail": "..."}`` when a rule is broken and, when the account's plan window
is used up, HTTP 429 ``usage_limit_reached`` saying how long until it resets.

``instructions`` is never moved into the conversation. The reference replaced a client's system prompt with
Codex CLI's official prompt and pushed the client's own text into a fake first *user* turn ("ignore your
system instructions..."), which made GPT-5-Codex worse. Here a client's instructions stay where the client
put them; a request without any (Codex CLI sends its prompt as a leading ``developer`` message instead) gets
that leading system/developer message as its instructions, which is what the API defines them to be.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, Final

import msgspec

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "UNSUPPORTED_FIELDS",
    "OutputCollector",
    "error_detail",
    "reset_wait",
    "shape_request",
    "usage_limit",
]

#: Body fields the backend refuses with ``Unsupported parameter: <name>``.
UNSUPPORTED_FIELDS: Final = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p")
#: Sent as ``instructions`` when a request brings no system prompt at all (the backend requires one).
DEFAULT_INSTRUCTIONS: Final = "You are a helpful assistant."
#: Reasoning items are only usable in a later turn with their encrypted content, since nothing is stored.
ENCRYPTED_REASONING: Final = "reasoning.encrypted_content"

_decode = msgspec.json.decode


def _text_of(content: Any) -> str | None:
    """The text of a message's content when it is only text (a string or input_text/text parts), else None."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "text", "output_text"):
            return None
        text = part.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "\n".join(texts)


def _leading_instructions(data: dict[str, Any]) -> str | None:
    """Take the first input item out as instructions if it is a text-only system/developer message."""
    items = data.get("input")
    if not isinstance(items, list) or not items:
        return None
    first = items[0]
    if not isinstance(first, dict) or first.get("role") not in ("system", "developer"):
        return None
    if first.get("type", "message") != "message":
        return None
    text = _text_of(first.get("content"))
    if text is None or not text.strip():
        return None
    data["input"] = items[1:]
    return text


def shape_request(data: dict[str, Any]) -> None:
    """Make a Responses body acceptable to the ChatGPT backend, in place."""
    data.pop("previous_response_id", None)
    data["stream"] = True
    data["store"] = False
    for key in UNSUPPORTED_FIELDS:
        data.pop(key, None)
    instructions = data.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        data["instructions"] = _leading_instructions(data) or DEFAULT_INSTRUCTIONS
    include = data.get("include")
    include = list(include) if isinstance(include, list) else []
    if ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    data["include"] = include


def error_detail(body: bytes) -> str | None:
    """The ``detail`` of the backend's own error answers (``{"detail": "Store must be set to false"}``)."""
    try:
        data = _decode(body[:65536])
    except msgspec.DecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = _decode(body[:65536])
    except msgspec.DecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def usage_limit(headers: Mapping[str, str], body: bytes) -> tuple[str, float | None] | None:
    """``(error type, seconds until the plan window resets)`` for a usage-limit answer, else ``None``.

    ``usage_limit_reached`` says when the window resets (see :func:`reset_wait`); ``usage_not_included`` (the
    plan has no Codex at all) has no reset time.
    """
    err = _error_object(body)
    if err is None:
        return None
    kind = err.get("type") or err.get("code") or err.get("error_type")
    if kind not in ("usage_limit_reached", "usage_not_included"):
        return None
    return str(kind), reset_wait(headers, body)


def reset_wait(headers: Mapping[str, str], body: bytes) -> float | None:
    """Seconds until the backend takes the account back, from its error body or headers, if it says.

    The error states ``resets_in_seconds`` (older answers) or ``resets_at`` (epoch seconds); the
    ``x-codex-primary-reset-after-seconds`` header states it too.
    """
    err = _error_object(body) or {}
    wait = _number(err.get("resets_in_seconds"))
    if wait is None:
        at = _number(err.get("resets_at"))
        if at is not None:
            wait = at - time.time()
    if wait is None:
        wait = _number(headers.get("x-codex-primary-reset-after-seconds"))
    return None if wait is None else float(max(0, math.ceil(wait)))


class OutputCollector:
    """Rebuilds the final response of a stream for a non-stream client.

    The final event carries the whole response, but the backend has been seen to send it with an empty
    ``output``; the items are then taken from the ``response.output_item.done`` events, in output order.
    """

    def __init__(self) -> None:
        self.items: dict[int, dict[str, Any]] = {}

    def feed(self, event: Mapping[str, Any]) -> None:
        if event.get("type") == "response.output_item.done" and isinstance(event.get("item"), dict):
            index = event.get("output_index")
            self.items[index if isinstance(index, int) else len(self.items)] = event["item"]

    def final(self, response: dict[str, Any]) -> dict[str, Any]:
        if not response.get("output") and self.items:
            return dict(response, output=[self.items[i] for i in sorted(self.items)])
        return response
