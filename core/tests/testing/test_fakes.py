"""The fakes must be indistinguishable from the real providers for the official SDKs.

Each test points an official SDK (or raw httpx, where wire details matter) at a fake over loopback and checks
that what the SDK parses equals the scripted ``Reply``, and that the SDK's own requests pass validation.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from cliproxy.testing import (
    FakeOpenAIChat,
    FakeOpenAIResponses,
    Recorded,
    Reply,
    ToolCall,
    Usage,
    serve_in_thread,
    serve_on_loopback,
)

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
MESSAGES: list[Any] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]


async def sse_events(resp: httpx.Response) -> AsyncIterator[tuple[str | None, bytes, float]]:
    """(event name, data, arrival time) per SSE event, read incrementally off the wire."""
    buf = b""
    async for chunk in resp.aiter_bytes():
        buf += chunk
        while True:
            m = re.search(rb"\r?\n\r?\n", buf)
            if not m:
                break
            block, buf = buf[: m.start()], buf[m.end() :]
            event, data = None, []
            for line in re.split(rb"\r?\n", block):
                if line.startswith(b"event: "):
                    event = line[7:].decode()
                elif line.startswith(b"data: "):
                    data.append(line[6:])
            yield event, b"\n".join(data), time.monotonic()


@pytest.fixture
async def chat() -> AsyncIterator[tuple[FakeOpenAIChat, str]]:
    fake = FakeOpenAIChat()
    async with serve_on_loopback(fake) as url:
        yield fake, url


@pytest.fixture
async def responses() -> AsyncIterator[tuple[FakeOpenAIResponses, str]]:
    fake = FakeOpenAIResponses()
    async with serve_on_loopback(fake) as url:
        yield fake, url


def client(url: str, key: str = "sk-test-1234") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0)


# -- package / loopback -------------------------------------------------------------------------------------


def test_package_imports_without_provider_sdks() -> None:
    code = (
        "import sys\n"
        "for m in ('openai', 'anthropic', 'google.genai', 'google'): sys.modules[m] = None\n"
        "import cliproxy.testing as t\n"
        "t.FakeOpenAIChat(); t.FakeClaude(); t.FakeGemini(); t.FakeGeminiCLI(); t.FakeOAuthServer()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_loopback_shuts_down_when_the_block_raises() -> None:
    fake = FakeOpenAIChat()
    with pytest.raises(RuntimeError, match="boom"):
        async with serve_on_loopback(fake) as url:
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{url}/v1/models")).status_code == 200
            raise RuntimeError("boom")
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/v1/models")


def test_serve_in_thread_with_sync_sdk() -> None:
    fake = FakeOpenAIChat().script(Reply(text="from a thread"))
    with serve_in_thread(fake) as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        out = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        sdk.close()
    assert out.choices[0].message.content == "from a thread"
    assert fake.validation_errors == []


# -- OpenAI chat completions -------------------------------------------------------------------------------


async def test_chat_non_stream(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="Hello there", usage=Usage(input=12, output=7, cached=3, reasoning=2)))
    async with client(f"{url}/v1") as sdk:
        out = await sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)
    assert out.object == "chat.completion"
    assert out.model == "gpt-4o"
    assert out.choices[0].message.content == "Hello there"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (12, 7, 19)
    assert out.usage.prompt_tokens_details and out.usage.prompt_tokens_details.cached_tokens == 3
    assert out.usage.completion_tokens_details and out.usage.completion_tokens_details.reasoning_tokens == 2
    assert fake.validation_errors == []
    rec = fake.last
    assert (rec.method, rec.path, rec.key, rec.model) == ("POST", "/v1/chat/completions", "sk-test-1234", "gpt-4o")
    assert rec.json["temperature"] == 0.2


async def test_chat_default_reply_echoes_and_handler(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    async with client(f"{url}/v1") as sdk:
        out = await sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert out.choices[0].message.content == "echo: hi there"
        seen: list[Recorded] = []

        async def handler(rec: Recorded) -> Reply:
            seen.append(rec)
            return Reply(text=f"model was {rec.model}")

        fake.handler = handler
        out = await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert out.choices[0].message.content == "model was gpt-4o-mini"
    assert len(seen) == 1


async def test_chat_stream_text_with_usage(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="one two three four", reasoning="hmm", usage=Usage(input=5, output=9)))
    async with client(f"{url}/v1") as sdk:
        stream = await sdk.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three four"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    reasoning = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices]
    assert "".join(r for r in reasoning if r) == "hmm"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 9)
    assert fake.validation_errors == []


async def test_chat_stream_wire_format(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="abc def", chunks=2))
    body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{url}/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"].startswith("req_")
        events = [data async for _, data, _ in sse_events(r)]
    assert events[-1] == b"[DONE]"
    objs = [msgspec.json.decode(e) for e in events[:-1]]
    for obj in objs:
        ChatCompletionChunk.model_validate(obj)
        assert "usage" not in obj  # no usage chunk unless stream_options.include_usage
    assert [o["choices"][0]["delta"].get("content") for o in objs] == ["", "abc ", "def", None]
    assert objs[-1]["choices"][0]["finish_reason"] == "stop"


async def test_chat_tool_calls_stream_and_non_stream(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    calls = [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="", name="get_weather", arguments='{"city":"Rome"}'),
    ]
    fake.script(Reply(tool_calls=calls), Reply(tool_calls=calls, chunks=5))
    async with client(f"{url}/v1") as sdk:
        out = await sdk.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
        async with sdk.chat.completions.stream(model="gpt-4o", messages=MESSAGES, tools=TOOLS) as stream:
            final = await stream.get_final_completion()
    for completion in (out, final):
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        got = choice.message.tool_calls or []
        assert [(c.function.name, msgspec.json.decode(c.function.arguments)) for c in got] == [  # type: ignore[union-attr]
            ("get_weather", {"city": "Paris"}),
            ("get_weather", {"city": "Rome"}),
        ]
        assert got[0].id == "call_1" and got[1].id.startswith("call_")
    assert fake.validation_errors == []


async def test_chat_errors_are_typed(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.keys = {"good"}
    fake.key_behaviour["flaky"] = Reply(status=500)
    fake.key_behaviour["limited"] = Reply(status=429, retry_after=2, error_message="slow down")
    async with client(f"{url}/v1", key="nope") as sdk:
        with pytest.raises(openai.AuthenticationError) as auth:
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert auth.value.code == "invalid_api_key"
    async with client(f"{url}/v1", key="limited") as sdk:
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    async with client(f"{url}/v1", key="flaky") as sdk:
        with pytest.raises(openai.InternalServerError):
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
    async with client(f"{url}/v1", key="good") as sdk:
        fake.script(Reply(status=429, error_code="insufficient_quota", error_type="insufficient_quota"))
        with pytest.raises(openai.RateLimitError) as quota:
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
        assert (quota.value.code, quota.value.type) == ("insufficient_quota", "insufficient_quota")
        fake.script(Reply(status=400, error_body=b'{"error":{"message":"raw","type":"x","param":null,"code":null}}'))
        with pytest.raises(openai.BadRequestError, match="raw"):
            await sdk.chat.completions.create(model="m", messages=MESSAGES)
        assert (await sdk.chat.completions.create(model="m", messages=MESSAGES)).choices[0].message.content
    assert fake.validation_errors == []


async def test_chat_validation_rejects_malformed_bodies(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    bad_bodies = [
        {"model": "gpt-4o", "messages": [{"role": "robot", "content": "hi"}]},
        {"model": "gpt-4o", "messages": MESSAGES, "temperature_typo": 1},
        {"messages": MESSAGES},
        {"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "text", "txt": "hi"}]}]},
    ]
    async with httpx.AsyncClient() as http:
        for body in bad_bodies:
            r = await http.post(f"{url}/v1/chat/completions", json=body)
            assert r.status_code == 400
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        r = await http.post(f"{url}/v1/chat/completions", content=b"{not json")
        assert r.status_code == 400
    assert len(fake.validation_errors) == 5
    assert "messages" in fake.validation_errors[0] and "temperature_typo" in fake.validation_errors[1]
    assert fake.pending == 0 and len(fake.requests) == 5
    # OpenAI-compatible servers accept extensions the first-party API rejects: opt in per fake.
    fake.allow_fields = {"top_k"}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "top_k": 5})
        assert r.status_code == 200 and fake.last.json["top_k"] == 5
    assert len(fake.validation_errors) == 5


async def test_chat_models_listing(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    async with client(f"{url}/v1") as sdk:
        models = [m.id async for m in sdk.models.list()]
        assert (await sdk.models.retrieve("gpt-4o")).id == "gpt-4o"
        with pytest.raises(openai.NotFoundError):
            await sdk.models.retrieve("nope")
    assert models == fake.models


async def test_custom_prefix() -> None:
    fake = FakeOpenAIChat(prefix="/api/openai/v1")
    async with fake.serve() as url, client(f"{url}/api/openai/v1") as sdk:
        out = await sdk.chat.completions.create(model="m", messages=MESSAGES)
        assert out.choices[0].message.content == "echo: hi there"
        with pytest.raises(openai.NotFoundError):
            await client(f"{url}/v1").chat.completions.create(model="m", messages=MESSAGES)


# -- streaming behaviour shared by every fake ---------------------------------------------------------------


async def test_chunk_delay_streams_incrementally(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="a b c d e f", chunk_delay=0.08))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as http, http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        times = [t async for _, _, t in sse_events(r)]
    assert len(times) == 9  # role, 6 words, finish, [DONE]
    total = times[-1] - times[0]
    assert total >= 0.5  # 8 gaps of 80 ms: the events were not buffered into one write
    assert times[1] - times[0] < total / 2


async def test_client_disconnect_is_counted(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="word " * 50, chunk_delay=0.05))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as http, http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        async for _ in sse_events(r):
            break
    assert await fake.wait_for_disconnects(1, within=3)
    assert fake.completed_streams == 0


async def test_fail_mid_stream_drops_the_connection(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(
        Reply(text="a b c d e f g", fail_mid_stream=True, fail_after=3), Reply(text="x y", fail_mid_stream=True)
    )
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    got: list[bytes] = []
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                async for _, data, _ in sse_events(r):
                    got.append(data)
        assert len(got) == 3 and b"[DONE]" not in got
        # Non-streaming: the body is cut short (half sent, connection closed).
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES})


async def test_slow_reply_delay(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.script(Reply(text="late", delay=0.3))
    started = time.monotonic()
    async with client(f"{url}/v1") as sdk:
        out = await sdk.chat.completions.create(model="m", messages=MESSAGES)
    assert out.choices[0].message.content == "late"
    assert time.monotonic() - started >= 0.3
    fake.script(Reply(text="too late", delay=2))
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=0.2) as sdk:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="m", messages=MESSAGES)


# -- OpenAI Responses / Codex ------------------------------------------------------------------------------

RESP_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False,
    }
]


async def test_responses_non_stream(responses: tuple[FakeOpenAIResponses, str]) -> None:
    fake, url = responses
    fake.script(
        Reply(
            text="It is sunny.",
            reasoning="Think about weather.",
            tool_calls=[ToolCall(id="call_9", name="get_weather", arguments={"city": "Oslo"})],
            usage=Usage(input=20, output=11, cached=4, reasoning=6),
        )
    )
    async with client(f"{url}/v1") as sdk:
        out = await sdk.responses.create(
            model="gpt-5", input="weather?", instructions="be brief", tools=RESP_TOOLS, reasoning={"effort": "low"}
        )
    assert out.status == "completed" and out.object == "response" and out.model == "gpt-5"
    assert out.output_text == "It is sunny."
    assert [item.type for item in out.output] == ["reasoning", "message", "function_call"]
    reasoning = out.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Think about weather."
    call = out.output[2]
    assert call.type == "function_call" and (call.call_id, call.name) == ("call_9", "get_weather")
    assert msgspec.json.decode(call.arguments) == {"city": "Oslo"}
    assert out.usage is not None
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.total_tokens) == (20, 11, 31)
    assert out.usage.input_tokens_details.cached_tokens == 4
    assert out.usage.output_tokens_details.reasoning_tokens == 6
    assert out.instructions == "be brief"
    assert fake.validation_errors == []


async def test_responses_stream_with_sdk_helper(responses: tuple[FakeOpenAIResponses, str]) -> None:
    fake, url = responses
    fake.script(
        Reply(
            text="Sunny and warm.",
            reasoning="Check the forecast first.",
            signature="ZW5jcnlwdGVk",
            tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Nice"})],
        )
    )
    async with (
        client(f"{url}/v1") as sdk,
        sdk.responses.stream(model="gpt-5", input="weather?", tools=RESP_TOOLS) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds and "response.function_call_arguments.delta" in kinds
    assert final.output_text == "Sunny and warm."
    assert final.output[0].type == "reasoning" and final.output[0].encrypted_content == "ZW5jcnlwdGVk"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, msgspec.json.decode(c.arguments)) for c in calls] == [("get_weather", {"city": "Nice"})]
    assert fake.validation_errors == []


async def test_responses_wire_events_match_sdk_types(responses: tuple[FakeOpenAIResponses, str]) -> None:
    from openai.types.responses import ResponseStreamEvent

    fake, url = responses
    fake.script(
        Reply(
            text="a b",
            reasoning="r",
            tool_calls=[ToolCall(id="", name="f", arguments={"x": 1})],
            finish="length",
        )
    )
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    body = {"model": "gpt-5-codex", "input": [{"role": "user", "content": "hi"}], "stream": True, "store": False}
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{url}/backend-api/codex/responses", json=body) as r,
    ):
        events = [(name, msgspec.json.decode(data)) async for name, data, _ in sse_events(r)]
    for index, (name, obj) in enumerate(events):
        assert name == obj["type"] and obj["sequence_number"] == index
        adapter.validate_python(obj)
    assert events[-1][0] == "response.incomplete"
    final = events[-1][1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["model"] == "gpt-5-codex"
    assert fake.last.path == "/backend-api/codex/responses"
    assert fake.validation_errors == []


async def test_responses_codex_base_url_and_errors(responses: tuple[FakeOpenAIResponses, str]) -> None:
    fake, url = responses
    fake.script(Reply(text="codex says hi"), Reply(status=429, retry_after=1.5))
    async with client(f"{url}/backend-api/codex") as sdk:
        stream = await sdk.responses.create(model="gpt-5-codex", input="hi", stream=True)
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        assert "".join(deltas) == "codex says hi"
        with pytest.raises(openai.RateLimitError) as err:
            await sdk.responses.create(model="gpt-5-codex", input="hi")
    assert err.value.response.headers["retry-after"] == "1.5"
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{url}/v1/responses", json={"model": "gpt-5", "input": 42})
        assert r.status_code == 400
    assert len(fake.validation_errors) == 1


async def test_many_concurrent_streams(chat: tuple[FakeOpenAIChat, str]) -> None:
    fake, url = chat
    fake.handler = lambda rec: Reply(text=f"reply to {rec.json['messages'][-1]['content']}", chunk_delay=0.01)
    async with client(f"{url}/v1") as sdk:

        async def one(i: int) -> str:
            msgs: list[Any] = [{"role": "user", "content": str(i)}]
            stream = await sdk.chat.completions.create(model="m", messages=msgs, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        results = await asyncio.gather(*(one(i) for i in range(20)))
    assert results == [f"reply to {i}" for i in range(20)]
    assert fake.completed_streams == 20
