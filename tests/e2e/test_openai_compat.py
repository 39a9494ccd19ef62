"""End to end: the official openai SDK -> cliproxy -> an OpenAI-compatible fake upstream on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from cliproxy.testing import FakeOpenAIChat, Reply, ToolCall, serve_on_loopback
from cliproxy.testing.proxy import ProxyHandle, run_proxy

CLIENT_KEY = "sk-client-test-123456"


def compat_config(upstream: str, keys: list[str], extra: str = "") -> str:
    entries = "".join(f"      - api-key: {k}\n" for k in keys)
    return (
        f"api-keys: [{CLIENT_KEY}]\n"
        "openai-compatibility:\n"
        "  - name: fakeup\n"
        f"    base-url: {upstream}/v1\n"
        "    api-key-entries:\n"
        f"{entries}"
        "    models:\n"
        "      - name: upstream-model-x\n"
        "        alias: my-alias\n" + extra
    )


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAIChat, str]]:
    app = FakeOpenAIChat(keys=["up-1", "up-2"])
    async with serve_on_loopback(app) as url:
        yield app, url


@pytest.fixture
async def proxy(fake: tuple[FakeOpenAIChat, str]) -> AsyncIterator[ProxyHandle]:
    async with run_proxy(compat_config(fake[1], ["up-1", "up-2"])) as handle:
        yield handle


def client(handle: ProxyHandle, key: str = CLIENT_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=handle.v1, api_key=key, max_retries=0)


async def test_chat_alias_is_rewritten_to_upstream_name(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    up.script(Reply(text="Hello from upstream", model="upstream-model-x"))
    resp = await client(proxy).chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "Hello from upstream"
    assert up.last.model == "upstream-model-x"
    assert up.last.header("authorization") in ("Bearer up-1", "Bearer up-2")
    assert up.validation_errors == []


async def test_answers_name_the_alias_the_client_used(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    """The upstream names its own model; the client must see the name it used, streaming or not."""
    up, _ = fake
    c = client(proxy)
    up.script(Reply(text="plain", model="upstream-model-x"))
    resp = await c.chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "hi"}])
    assert resp.model == "my-alias" and up.last.model == "upstream-model-x"
    # A dated snapshot name from the upstream is replaced too.
    up.script(Reply(text="dated", model="upstream-model-x-2025-01-01"))
    resp = await c.chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "hi"}])
    assert resp.model == "my-alias" and resp.choices[0].message.content == "dated"
    for model in ("upstream-model-x", "upstream-model-x-2025-01-01"):
        up.script(Reply(text="one two three", chunks=3, model=model))
        stream = await c.chat.completions.create(
            model="my-alias",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        names = [chunk.model async for chunk in stream]
        assert len(names) >= 4 and set(names) == {"my-alias"}, names


async def test_tool_arguments_naming_the_upstream_model_are_not_rewritten(
    fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle
) -> None:
    up, _ = fake
    up.script(Reply(tool_calls=[ToolCall(id="call_1", name="spawn", arguments={"model": "upstream-model-x"})]))
    resp = await client(proxy).chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "go"}])
    calls = resp.choices[0].message.tool_calls
    assert resp.model == "my-alias" and calls is not None
    assert calls[0].function.arguments == '{"model":"upstream-model-x"}'  # type: ignore[union-attr]


async def test_streaming_relays_every_chunk(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    up.script(Reply(text="one two three four five", chunks=5))
    stream = await client(proxy).chat.completions.create(
        model="my-alias",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    usage = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) == "one two three four five"
    assert len(parts) == 5
    assert usage is not None
    assert up.last.json["stream"] is True


async def test_stream_is_not_buffered(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    """The first chunk reaches the client before the upstream has sent the last one."""
    up, _ = fake
    up.script(Reply(text="a b c d e f", chunks=6, chunk_delay=0.25))
    arrivals: list[float] = []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            proxy.v1 + "/chat/completions",
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
            json={"model": "my-alias", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        ) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["access-control-allow-origin"] == "*"
        async for chunk in resp.aiter_bytes():
            if b"data:" in chunk:
                arrivals.append(time.monotonic())
    assert len(arrivals) >= 4, "chunks were coalesced: the proxy buffered the stream"
    # The upstream spends ~6 * 0.25 s between its first and last chunk; buffering would collapse that gap.
    assert arrivals[-1] - arrivals[0] > 0.8


async def test_client_disconnect_cancels_upstream(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    up.script(Reply(text=" ".join(["tok"] * 40), chunks=40, chunk_delay=0.2))
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            proxy.v1 + "/chat/completions",
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
            json={"model": "my-alias", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        ) as resp,
    ):
        async for chunk in resp.aiter_bytes():
            if b"data:" in chunk:
                break
    assert await up.wait_for_disconnects(1, within=5.0), "upstream stream kept running after the client left"
    assert up.completed_streams == 0


async def test_tool_call_round_trip(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    up.script(
        Reply(tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    c = client(proxy)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await c.chat.completions.create(model="my-alias", messages=messages, tools=tools)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and '"Paris"' in call.function.arguments
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24C"},
    ]
    second = await c.chat.completions.create(model="my-alias", messages=messages, tools=tools)  # type: ignore[arg-type]
    assert second.choices[0].message.content == "It is sunny in Paris."
    sent = up.last.json["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 24C"}
    assert up.validation_errors == []


async def test_missing_or_wrong_key_gets_openai_shaped_401(proxy: ProxyHandle) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        await client(proxy, key="wrong").chat.completions.create(model="my-alias", messages=[])
    assert exc.value.status_code == 401
    async with httpx.AsyncClient() as http:
        r = await http.post(proxy.v1 + "/chat/completions", json={"model": "my-alias"})
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "message": "Missing API key",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@pytest.mark.parametrize(
    "headers,params",
    [
        ({"x-api-key": CLIENT_KEY}, {}),
        ({"x-goog-api-key": CLIENT_KEY}, {}),
        ({}, {"key": CLIENT_KEY}),
        ({"Authorization": f"Bearer {CLIENT_KEY}"}, {}),
    ],
)
async def test_key_locations(proxy: ProxyHandle, headers: dict[str, str], params: dict[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(proxy.v1 + "/models", headers=headers, params=params)
    assert r.status_code == 200


async def test_models_lists_alias_in_both_styles(proxy: ProxyHandle) -> None:
    models = await client(proxy).models.list()
    assert [m.id for m in models.data] == ["my-alias"]
    assert models.data[0].owned_by == "fakeup"
    async with httpx.AsyncClient() as http:
        r = await http.get(
            proxy.v1 + "/models", headers={"x-api-key": CLIENT_KEY, "user-agent": "claude-cli/2.1 (external, cli)"}
        )
    body = r.json()
    assert "object" not in body and body["data"][0]["id"] == "my-alias"
    assert body["data"][0]["display_name"] == "upstream-model-x"


async def test_upstream_error_keeps_status_and_body(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    up.script(Reply(status=400, error_message="max_tokens is too large"))
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "x"}])
    assert "max_tokens is too large" in str(exc.value)
    assert len(up.requests) == 1  # a client error is not retried on the other key


async def test_unknown_model_names_the_model(proxy: ProxyHandle) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await client(proxy).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "unknown provider for model no-such-model" in str(exc.value)


async def test_malformed_body_is_a_clear_400(proxy: ProxyHandle) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            proxy.v1 + "/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        )
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"
        r = await http.post(
            proxy.v1 + "/chat/completions", json={"model": 5}, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        )
        assert r.status_code == 400 and "model" in r.json()["error"]["message"]


async def test_keys_of_an_entry_are_used_round_robin(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    up, _ = fake
    c = client(proxy)
    await asyncio.gather(
        *(c.chat.completions.create(model="my-alias", messages=[{"role": "user", "content": "x"}]) for _ in range(10))
    )
    used = [r.header("authorization") for r in up.requests]
    assert used.count("Bearer up-1") == 5 and used.count("Bearer up-2") == 5


async def test_root_health_and_head(proxy: ProxyHandle) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(proxy.url + "/")
        assert r.json()["message"] == "CLI Proxy API Server"
        assert r.headers["access-control-allow-origin"] == "*"
        assert (await http.head(proxy.url + "/")).status_code == 200
        assert (await http.get(proxy.url + "/healthz")).json() == {"status": "ok"}
        pre = await http.options(proxy.v1 + "/chat/completions")
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"


async def test_dynamic_provider_syntax_sends_any_model_verbatim(
    fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle
) -> None:
    up, _ = fake
    up.script(Reply(text="dynamic"))
    resp = await client(proxy).chat.completions.create(
        model="fakeup://vendor/some-model:free", messages=[{"role": "user", "content": "x"}]
    )
    assert resp.choices[0].message.content == "dynamic"
    assert up.last.model == "vendor/some-model:free"
    with pytest.raises(openai.BadRequestError):
        await client(proxy).chat.completions.create(model="nosuch://m", messages=[{"role": "user", "content": "x"}])


async def test_large_request_bodies_are_accepted(fake: tuple[FakeOpenAIChat, str], proxy: ProxyHandle) -> None:
    """A 20 MB prompt (an inline PDF or images) passes; Litestar's 10 MB default would answer 413."""
    up, _ = fake
    up.script(Reply(text="big"))
    big = "x" * (20 * 1024 * 1024)
    resp = await client(proxy).chat.completions.create(model="my-alias", messages=[{"role": "user", "content": big}])
    assert resp.choices[0].message.content == "big"
    assert len(up.last.body) > 20 * 1024 * 1024
