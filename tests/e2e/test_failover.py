"""End to end: many keys behind one openai-compatibility entry, failing in different ways.

openai SDK (max_retries=0) -> cliproxy on loopback -> FakeOpenAIChat on loopback with per-key behaviour.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from cliproxy.testing import FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy.testing.proxy import ProxyHandle, run_proxy

CLIENT_KEY = "sk-client-failover-123456"
GOOD = ["good-key-a", "good-key-b", "good-key-c"]
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def config(upstream: str, keys: list[str], extra: str = "") -> str:
    entries = "".join(f"      - api-key: {k}\n" for k in keys)
    return (
        f"api-keys: [{CLIENT_KEY}]\n"
        f"{extra}"
        "openai-compatibility:\n"
        "  - name: multi\n"
        f"    base-url: {upstream}/v1\n"
        "    api-key-entries:\n"
        f"{entries}"
        "    models:\n"
        "      - name: up-model\n"
        "        alias: m\n"
    )


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAIChat, str]]:
    app = FakeOpenAIChat(keys=GOOD, validate=False)  # body validation is covered by the translation tests
    app.key_behaviour["quota-key"] = Reply(status=429)
    app.key_behaviour["server-key"] = Reply(status=500)
    # "revoked-key" is unknown to the fake: it answers 401.
    async with serve_on_loopback(app) as url:
        yield app, url


def client(handle: ProxyHandle) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=handle.v1, api_key=CLIENT_KEY, max_retries=0)


def keys_seen(app: FakeOpenAIChat) -> Counter[str | None]:
    return Counter(r.key for r in app.requests if r.path.endswith("/chat/completions"))


async def test_sixty_requests_succeed_and_good_keys_share_them_evenly(
    upstream: tuple[FakeOpenAIChat, str],
) -> None:
    app, url = upstream
    keys = [*GOOD, "quota-key", "revoked-key", "server-key"]
    async with run_proxy(config(url, keys)) as proxy:
        c = client(proxy)
        gate = asyncio.Semaphore(4)

        async def one(i: int) -> str | None:
            async with gate:
                r = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
                return r.choices[0].message.content

        answers = await asyncio.gather(*(one(i) for i in range(60)))
        assert answers == [f"echo: q{i}" for i in range(60)]
        seen = keys_seen(app)
        good = [seen[k] for k in GOOD]
        assert sum(good) == 60
        assert max(good) - min(good) <= 1, seen
        for bad in ("quota-key", "revoked-key", "server-key"):
            assert 1 <= seen[bad] <= 3, seen
        status = {s["api_key"]: s for s in proxy.container.pool().status()}
        states = {s["state"] for s in status.values() if s["last_status"] in (401, 500)}
        assert states == {"cooling"}


@pytest.mark.parametrize("code", [400, 404, 413, 422])
async def test_request_errors_reach_the_client_after_one_upstream_call(
    upstream: tuple[FakeOpenAIChat, str], code: int
) -> None:
    app, url = upstream
    async with run_proxy(config(url, GOOD, "request-retry: 3\n")) as proxy:
        app.script(Reply(status=code, error_message="messages[0].content is bad"))
        with pytest.raises(openai.APIStatusError) as info:
            await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert info.value.status_code == code
        assert "messages[0].content is bad" in str(info.value)
        assert sum(keys_seen(app).values()) == 1
        # The credential is not blamed for the client's mistake.
        assert all(s["state"] == "available" for s in proxy.container.pool().status())


async def test_streaming_fails_over_before_the_first_byte(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["server-key", "revoked-key", "good-key-a"])) as proxy:
        for _ in range(3):
            stream = await client(proxy).chat.completions.create(model="m", messages=MSG, stream=True)
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            assert text == "echo: hi"
        seen = keys_seen(app)
        assert seen["good-key-a"] == 3
        assert seen["server-key"] == seen["revoked-key"] == 1


async def test_streaming_never_fails_over_after_the_first_byte(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["good-key-a", "good-key-b"], "request-retry: 2\n")) as proxy:
        app.script(Reply(text="one two three four five six", chunks=6, fail_mid_stream=True, fail_after=3))
        stream = await client(proxy).chat.completions.create(model="m", messages=MSG, stream=True)
        parts: list[str] = []
        with pytest.raises(openai.APIError):
            async for ch in stream:
                if ch.choices and ch.choices[0].delta.content:
                    parts.append(ch.choices[0].delta.content)
        assert parts and "".join(parts) != "one two three four five six"
        assert sum(keys_seen(app).values()) == 1


async def test_all_keys_cooling_answers_429_with_retry_after(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    app.key_behaviour["quota-key"] = Reply(status=429, retry_after=30)
    app.key_behaviour["quota-key-2"] = Reply(status=429, retry_after=20)
    async with run_proxy(config(url, ["quota-key", "quota-key-2"])) as proxy:
        c = client(proxy)
        with pytest.raises(openai.RateLimitError) as first:
            await c.chat.completions.create(model="m", messages=MSG)
        assert 1 <= int(first.value.response.headers["retry-after"]) <= 20
        assert sum(keys_seen(app).values()) == 2
        with pytest.raises(openai.RateLimitError) as second:
            await c.chat.completions.create(model="m", messages=MSG)
        body = second.value.body
        assert isinstance(body, dict) and body["code"] == "model_cooldown"
        assert 1 <= int(second.value.response.headers["retry-after"]) <= 20
        assert sum(keys_seen(app).values()) == 2  # nothing was sent upstream the second time
        # Claude clients get the same answer in their own shape (when the Messages route is installed).
        async with httpx.AsyncClient(base_url=proxy.url) as h:
            r = await h.post(
                "/v1/messages",
                headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"},
                json={"model": "m", "max_tokens": 10, "messages": MSG},
            )
        if r.status_code != 404 or "not a cliproxy endpoint" not in r.text:
            assert r.status_code == 429
            assert 1 <= int(r.headers["retry-after"]) <= 20
            assert r.json()["type"] == "error"
            assert r.json()["error"]["type"] == "rate_limit_error"


async def test_request_retry_waits_out_a_short_retry_after(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["good-key-a"], "request-retry: 1\n")) as proxy:
        app.script(Reply(status=429, retry_after=1))
        r = await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "echo: hi"
        assert keys_seen(app)["good-key-a"] == 2


async def test_without_request_retry_a_single_key_429_is_returned(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["good-key-a"], "request-retry: 0\n")) as proxy:
        app.script(Reply(status=429, retry_after=1))
        with pytest.raises(openai.RateLimitError) as info:
            await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert info.value.response.headers["retry-after"] == "1"
        assert keys_seen(app)["good-key-a"] == 1


async def test_retry_wait_is_bounded_by_max_retry_interval(upstream: tuple[FakeOpenAIChat, str]) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["good-key-a"], "request-retry: 3\nmax-retry-interval: 1\n")) as proxy:
        app.script(Reply(status=429, retry_after=60))
        with pytest.raises(openai.RateLimitError):
            await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert keys_seen(app)["good-key-a"] == 1


async def test_request_retry_retries_a_flaky_upstream_on_the_same_key(
    upstream: tuple[FakeOpenAIChat, str],
) -> None:
    app, url = upstream
    async with run_proxy(config(url, ["good-key-a"], "request-retry: 1\n")) as proxy:
        app.script(Reply(status=503))
        r = await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "echo: hi"
        assert keys_seen(app)["good-key-a"] == 2
    async with run_proxy(config(url, ["good-key-b"], "request-retry: 0\n")) as proxy:
        app.script(Reply(status=503))
        with pytest.raises(openai.InternalServerError):
            await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert keys_seen(app)["good-key-b"] == 1


async def test_switch_project_false_returns_the_429_instead_of_failing_over(
    upstream: tuple[FakeOpenAIChat, str],
) -> None:
    app, url = upstream
    extra = "quota-exceeded:\n  switch-project: false\n"
    async with run_proxy(config(url, GOOD, extra)) as proxy:
        app.script(Reply(status=429))
        with pytest.raises(openai.RateLimitError):
            await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert sum(keys_seen(app).values()) == 1
    app.reset()
    async with run_proxy(config(url, GOOD)) as proxy:
        app.script(Reply(status=429))
        r = await client(proxy).chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "echo: hi"
        assert sum(keys_seen(app).values()) == 2


async def test_concurrent_requests_over_five_keys_lose_nothing() -> None:
    keys = [f"conc-key-{i}" for i in range(5)]
    app = FakeOpenAIChat(keys=keys, validate=False)
    async with serve_on_loopback(app) as url, run_proxy(config(url, keys)) as proxy:
        c = client(proxy)

        async def one(i: int) -> str | None:
            r = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"n{i}"}])
            return r.choices[0].message.content

        answers = await asyncio.gather(*(one(i) for i in range(100)))
        assert sorted(a or "" for a in answers) == sorted(f"echo: n{i}" for i in range(100))
        seen = keys_seen(app)
        assert sum(seen.values()) == 100
        assert max(seen.values()) - min(seen.values()) <= 1, seen
