"""Pass-through answers get the client's model name back, and nothing else changes."""

from __future__ import annotations

import msgspec

from cliproxy.execute import _ModelName
from cliproxy.formats.builtin import CODECS
from cliproxy.sse import SSEEvent, frame

UP, CLIENT = "claude-sonnet-4-5-20250929", "sonnet"


def test_unary_changes_only_the_top_level_name() -> None:
    body = (
        b'{"id":"msg_1","type":"message","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use",'
        b'"id":"t1","name":"Task","input":{"model":"claude-sonnet-4-5-20250929","n":1.50}}],"x-vendor":[1, 2]}'
    )
    out = _ModelName(CODECS["claude"], UP, CLIENT).unary(body)
    assert out == body.replace(b'"model":"claude-sonnet-4-5-20250929","content"', b'"model":"sonnet","content"')
    assert msgspec.json.decode(out)["content"][0]["input"]["model"] == UP  # a tool's input is the model's own


def test_stream_batches_fall_back_per_event_when_the_upstream_names_its_model_differently() -> None:
    rename = _ModelName(CODECS["claude"], UP, CLIENT)
    events = [
        SSEEvent(data=b'{"type":"message_start","message":{"id":"m","model": "claude-sonnet-4-5"}}', event="m"),
        SSEEvent(data=b'{"type":"content_block_delta","delta":{"text":"the \\"model\\": x"}}', event="d"),
    ]
    out = rename.frames(b"".join(frame(e.data, e.event) for e in events), events)
    assert b'"message":{"id":"m","model":"sonnet"}' in out and b'the \\"model\\": x' in out
    fast = [SSEEvent(data=b'{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929"}}')]
    assert rename.frames(frame(fast[0].data), fast) == frame(b'{"type":"message_start","message":{"model":"sonnet"}}')


def test_nested_paths_per_dialect() -> None:
    cli = _ModelName(CODECS["gemini-cli"], "gemini-2.5-pro", "pro")
    body = b'{"response":{"candidates":[],"modelVersion":"gemini-2.5-pro-001"},"traceId":"t"}'
    assert msgspec.json.decode(cli.unary(body))["response"]["modelVersion"] == "pro"
    responses = _ModelName(CODECS["openai-response"], "gpt-5", "my-gpt")
    ev = b'{"type":"response.created","response":{"id":"r","model":"gpt-5-2025-08-07","output":[]}}'
    assert msgspec.json.decode(responses.event(ev))["response"]["model"] == "my-gpt"
    assert responses.event(b'{"type":"response.output_text.delta","delta":"hi"}') == (
        b'{"type":"response.output_text.delta","delta":"hi"}'
    )
