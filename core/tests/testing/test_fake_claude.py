"""FakeClaude against the official Anthropic SDK and the raw wire format."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import msgspec
import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from cliproxy.testing import FakeClaude, Reply, ToolCall, Usage, serve_on_loopback

TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def claude() -> AsyncIterator[tuple[FakeClaude, str]]:
    fake = FakeClaude()
    async with serve_on_loopback(fake) as url:
        yield fake, url


def client(url: str, **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("api_key", "sk-ant-test")
    return anthropic.AsyncAnthropic(base_url=url, max_retries=0, **kw)


async def raw_events(resp: httpx.Response) -> list[tuple[str | None, Any]]:
    body = b"".join([chunk async for chunk in resp.aiter_bytes()])
    out: list[tuple[str | None, Any]] = []
    for block in re.split(rb"\n\n", body.strip()):
        lines = block.split(b"\n")
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")
        out.append((lines[0][7:].decode(), msgspec.json.decode(lines[1][6:])))
    return out


async def test_messages_create(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.script(Reply(text="Sunny.", usage=Usage(input=30, output=4, cached=10)))
    async with client(url) as sdk:
        msg = await sdk.messages.create(model="claude-sonnet-5", max_tokens=100, messages=MESSAGES, system="brief")
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "claude-sonnet-5"
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Sunny."  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (20, 10, 4)
    rec = fake.last
    assert rec.key == "sk-ant-test" and rec.header("anthropic-version")
    assert fake.validation_errors == []


async def test_messages_stream_thinking_and_tool_use(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.script(
        Reply(
            reasoning="The user wants weather. Call the tool.",
            signature="c2lnbmF0dXJl",
            text="Let me check.",
            tool_calls=[ToolCall(id="toolu_01", name="get_weather", arguments={"city": "Paris", "days": 2})],
            usage=Usage(input=50, output=40),
            chunks=4,
        )
    )
    async with (
        client(url) as sdk,
        sdk.messages.stream(
            model="claude-sonnet-5",
            max_tokens=4096,
            messages=MESSAGES,
            tools=TOOLS,
            thinking={"type": "enabled", "budget_tokens": 2048},
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Let me check."
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    thinking, _, tool = final.content
    assert thinking.type == "thinking" and thinking.thinking == "The user wants weather. Call the tool."
    assert thinking.signature == "c2lnbmF0dXJl"
    assert tool.type == "tool_use" and (tool.id, tool.name) == ("toolu_01", "get_weather")
    assert tool.input == {"city": "Paris", "days": 2}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (50, 40)
    assert fake.validation_errors == []


async def test_stream_wire_format(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.script(Reply(text="hi there", tool_calls=[ToolCall(id="", name="f", arguments={"a": "bcdefgh"})], chunks=3))
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    body = {"model": "claude-opus-5", "max_tokens": 10, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as http, http.stream("POST", f"{url}/v1/messages", json=body, headers=HEADERS) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["request-id"].startswith("req_")
        events = await raw_events(r)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    for name, obj in events:
        assert obj["type"] == name
        if name != "ping":
            adapter.validate_python(obj)
    partial = [o["delta"]["partial_json"] for n, o in events if n == "content_block_delta" and o["index"] == 1]
    assert partial[0] == "" and len(partial) == 4 and msgspec.json.decode("".join(partial)) == {"a": "bcdefgh"}
    tool_start = next(o for n, o in events if n == "content_block_start" and o["index"] == 1)
    assert tool_start["content_block"]["id"].startswith("toolu_") and tool_start["content_block"]["input"] == {}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_errors_are_typed(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.keys = {"sk-ant-good"}
    fake.key_behaviour["sk-ant-busy"] = Reply(status=529)
    async with client(url, api_key="sk-ant-wrong") as sdk:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await sdk.messages.create(model="c", max_tokens=5, messages=MESSAGES)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    async with client(url, api_key="sk-ant-busy") as sdk:
        with pytest.raises(anthropic.OverloadedError):
            await sdk.messages.create(model="c", max_tokens=5, messages=MESSAGES)
    fake.script(Reply(status=429, retry_after=7, error_message="Number of request tokens has exceeded your limit"))
    async with client(url, api_key="sk-ant-good") as sdk:
        with pytest.raises(anthropic.RateLimitError) as limited:
            await sdk.messages.create(model="c", max_tokens=5, messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "7"
    body = limited.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"] == {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your limit"}


async def test_oauth_bearer_and_beta_endpoint(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.keys = {"sk-ant-oat01-token"}
    async with client(url, api_key=None, auth_token="sk-ant-oat01-token") as sdk:
        msg = await sdk.beta.messages.create(
            model="claude-sonnet-5",
            max_tokens=20,
            messages=MESSAGES,
            betas=["oauth-2025-04-20"],
        )
    assert msg.content[0].type == "text" and msg.content[0].text.startswith("echo: What is the weather")
    rec = fake.last
    assert rec.key == "sk-ant-oat01-token" and rec.header("anthropic-beta") == "oauth-2025-04-20"
    assert "betas" not in rec.json
    assert fake.validation_errors == []
    # Claude Code posts to ?beta=true: beta-only fields are accepted there and rejected on the GA route.
    body = {"model": "claude-sonnet-5", "max_tokens": 5, "messages": MESSAGES, "mcp_servers": []}
    headers = {**HEADERS, "authorization": "Bearer sk-ant-oat01-token"}
    del headers["x-api-key"]
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{url}/v1/messages?beta=true", json=body, headers=headers)
        assert r.status_code == 200 and fake.last.query == {"beta": "true"}
        r = await http.post(f"{url}/v1/messages", json=body, headers=headers)
        assert r.status_code == 400 and "mcp_servers" in r.json()["error"]["message"]
        r = await http.post(f"{url}/v1/messages?beta=true", json={**body, "betas": ["x"]}, headers=headers)
        assert r.status_code == 400
    assert len(fake.validation_errors) == 2


async def test_count_tokens_and_models(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    fake.script(Reply(usage=Usage(input=123)))
    async with client(url) as sdk:
        count = await sdk.messages.count_tokens(model="claude-sonnet-5", messages=MESSAGES, tools=TOOLS)
        models = [m.id async for m in sdk.models.list()]
    assert count.input_tokens == 123
    assert models == fake.models
    assert fake.validation_errors == []


async def test_validation(claude: tuple[FakeClaude, str]) -> None:
    fake, url = claude
    async with httpx.AsyncClient() as http:
        ok = {"model": "c", "max_tokens": 5, "messages": MESSAGES}
        r = await http.post(f"{url}/v1/messages", json=ok, headers={"x-api-key": "k"})
        assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
        bad = {"model": "c", "messages": [{"role": "user", "content": [{"type": "txt", "text": "x"}]}]}
        r = await http.post(f"{url}/v1/messages", json=bad, headers=HEADERS)
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error" and r.json()["type"] == "error"
        r = await http.post(f"{url}/v1/messages", json={**ok, "top_k": "many"}, headers=HEADERS)
        assert r.status_code == 400
    assert len(fake.validation_errors) == 3
    assert "max_tokens" in fake.validation_errors[1]
