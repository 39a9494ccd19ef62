"""Translation cost: a large Claude Code request into every upstream dialect, and per-event stream cost.

Run: ``uv run python bench/translate_bench.py``. Targets: < 5 ms per request, < 20 µs per stream event.
The request mimics what Claude Code sends (3 system blocks with cache_control, 24 tools with JSON schemas,
a long tool-using history of about 200 KB); the stream is a 200-event text answer plus a tool call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from cliproxy import ir
from cliproxy.formats import claude, gemini, gemini_cli, openai_chat, openai_responses
from cliproxy.sse import SSEEvent, SSEParser

CODECS = {
    "openai": openai_chat.CODEC,
    "openai-response": openai_responses.CODEC,
    "claude": claude.CODEC,
    "gemini": gemini.CODEC,
    "gemini-cli": gemini_cli.CODEC,
}


def claude_code_request(target_bytes: int = 200_000) -> bytes:
    tools = []
    for i in range(24):
        tools.append(
            {
                "name": f"Tool{i}",
                "description": "Executes a given command in a persistent shell session with optional timeout. " * 4,
                "input_schema": {
                    "type": "object",
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "additionalProperties": False,
                    "properties": {
                        "command": {"type": "string", "description": "The command to execute"},
                        "timeout": {"type": "number", "description": "Optional timeout in milliseconds"},
                        "paths": {"type": "array", "items": {"type": "string", "format": "uri"}},
                        "mode": {"type": ["string", "null"], "enum": ["fast", "slow", None]},
                    },
                    "required": ["command"],
                },
            }
        )
    messages: list[dict[str, Any]] = []
    filler = "The quick brown fox jumps over the lazy dog while the build runs its tests. " * 20
    i = 0
    while len(msgspec.json.encode(messages)) < target_bytes:
        tid = f"toolu_{i:020d}"
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"<system-reminder>step {i}</system-reminder>"},
                    {"type": "text", "text": filler, "cache_control": {"type": "ephemeral"}},
                ],
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Let me look at the files. " * 10, "signature": "c2ln" * 40},
                    {"type": "text", "text": "I'll run the tests."},
                    {"type": "tool_use", "id": tid, "name": f"Tool{i % 24}", "input": {"command": f"pytest -k t{i}"}},
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tid, "content": filler[:800], "is_error": False}],
            }
        )
        i += 1
    messages.append({"role": "user", "content": "Now summarise what failed."})
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code. " * 200, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Environment details. " * 100, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": tools,
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "metadata": {"user_id": '{"device_id":"d","account_uuid":"a","session_id":"s"}'},
        "messages": messages,
    }
    return msgspec.json.encode(body)


def timeit(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000, min(samples) * 1000


def stream_events(dialect: str, n: int) -> list[SSEEvent]:
    """A realistic upstream stream in ``dialect``, produced by that dialect's own encoder."""
    req = ir.Request(
        model="m", messages=[ir.Message(role="user", parts=[ir.TextPart("hi")])], stream=True, include_usage=True
    )
    enc = CODECS[dialect].stream_encoder(req)
    wire = enc.encode(ir.Start(id="resp_1", model="m"))
    for i in range(n):
        wire += enc.encode(ir.TextDelta(f"token{i} "))
    wire += enc.encode(ir.ToolCallStart(index=0, id="call_1", name="Bash"))
    wire += enc.encode(ir.ToolArgsDelta(index=0, json='{"command": "ls -la"}'))
    wire += enc.encode(ir.UsageEvent(ir.Usage(input_tokens=100, output_tokens=n)))
    wire += enc.encode(ir.Finish("tool_calls"))
    wire += enc.close()
    parser = SSEParser()
    return parser.feed(wire) + parser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--events", type=int, default=200)
    args = ap.parse_args()

    body = claude_code_request()
    print(f"Claude Code request: {len(body) / 1024:.0f} KB, 24 tools\n")
    print(f"{'step':<44}{'median ms':>10}{'best ms':>10}")
    med, best = timeit(lambda: claude.CODEC.decode_request(body), args.repeat)
    print(f"{'decode claude request -> IR':<44}{med:>10.2f}{best:>10.2f}")
    req = claude.CODEC.decode_request(body)
    for name, codec in CODECS.items():
        if name == "claude":
            continue
        med, best = timeit(lambda codec=codec: codec.encode_request(req), args.repeat)
        med2, best2 = timeit(lambda codec=codec: codec.encode_request(claude.CODEC.decode_request(body)), args.repeat)
        print(f"{'IR -> ' + name:<44}{med:>10.2f}{best:>10.2f}")
        print(f"{'  full claude -> ' + name + ' (decode+encode)':<44}{med2:>10.2f}{best2:>10.2f}")

    print(f"\nPer-event stream translation ({args.events} text events + a tool call), µs per upstream event")
    print(f"{'upstream -> client':<44}{'median µs':>10}{'best µs':>10}")
    for up in ("openai", "openai-response", "claude", "gemini"):
        events = stream_events(up, args.events)
        for client in ("openai", "openai-response", "claude", "gemini"):
            if client == up:
                continue

            def run(up: str = up, client: str = client, events: list[SSEEvent] = events) -> None:
                dec = CODECS[up].stream_decoder(req)
                enc = CODECS[client].stream_encoder(req)
                for ev in events:
                    for e in dec.feed(ev):
                        enc.encode(e)
                for e in dec.close():
                    enc.encode(e)
                enc.close()

            med, best = timeit(run, max(5, args.repeat // 3))
            per = len(events)
            print(f"{up + ' -> ' + client:<44}{med * 1000 / per:>10.2f}{best * 1000 / per:>10.2f}")


if __name__ == "__main__":
    main()
