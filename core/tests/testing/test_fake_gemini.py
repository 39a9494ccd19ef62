"""FakeGemini against the official google-genai SDK, and FakeGeminiCLI's Cloud Code Assist envelope."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from google import genai
from google.genai import errors, types

from cliproxy.testing import FakeGemini, FakeGeminiCLI, Reply, ToolCall, Usage, serve_on_loopback

SIG = base64.b64encode(b"opaque-thought-signature").decode()
CONTENTS: list[Any] = [{"role": "user", "parts": [{"text": "weather in Paris?"}]}]


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[FakeGemini, str]]:
    fake = FakeGemini()
    async with serve_on_loopback(fake) as url:
        yield fake, url


def client(url: str, key: str = "AIza-test") -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, api_version="v1beta"))


def config() -> types.GenerateContentConfig:
    decl = types.FunctionDeclaration(
        name="get_weather",
        description="Weather for a city",
        parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    return types.GenerateContentConfig(
        system_instruction="be brief",
        temperature=0.3,
        max_output_tokens=256,
        tools=[types.Tool(function_declarations=[decl])],
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
    )


def rich_reply(**kw: Any) -> Reply:
    return Reply(
        reasoning="Need the weather tool.",
        signature=SIG,
        text="Checking now.",
        tool_calls=[ToolCall(id="", name="get_weather", arguments={"city": "Paris"})],
        usage=Usage(input=40, output=30, cached=8, reasoning=12),
        **kw,
    )


async def test_generate_content(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    fake.script(rich_reply())
    aio = client(url).aio
    out = await aio.models.generate_content(model="gemini-2.5-flash", contents="weather in Paris?", config=config())
    await aio.aclose()
    parts = out.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts is not None
    assert [(p.thought, p.text) for p in parts[:2]] == [(True, "Need the weather tool."), (None, "Checking now.")]
    assert parts[0].thought_signature == b"opaque-thought-signature"
    assert out.function_calls is not None
    assert [(c.name, c.args) for c in out.function_calls] == [("get_weather", {"city": "Paris"})]
    assert out.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = out.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (40, 18, 12)
    assert (usage.total_token_count, usage.cached_content_token_count) == (70, 8)
    assert out.model_version == "gemini-2.5-flash"
    rec = fake.last
    assert rec.path == "/v1beta/models/gemini-2.5-flash:generateContent" and rec.key == "AIza-test"
    gen = rec.json["generationConfig"]
    thinking = gen.get("thinkingConfig") or gen.get("thinking_config")
    assert set(thinking.values()) == {True, 1024}  # proto JSON: the SDK may use either key spelling
    assert fake.validation_errors == []


async def test_generate_content_stream(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    fake.script(rich_reply(chunks=3))
    aio = client(url).aio
    chunks = [
        c
        async for c in await aio.models.generate_content_stream(model="gemini-2.5-pro", contents="hi", config=config())
    ]
    await aio.aclose()
    assert fake.last.query == {"alt": "sse"}
    texts = [p.text for c in chunks for p in (c.candidates[0].content.parts or []) if p.text and not p.thought]  # type: ignore[index,union-attr]
    thoughts = [p.text for c in chunks for p in (c.candidates[0].content.parts or []) if p.thought]  # type: ignore[index,union-attr]
    assert "".join(texts) == "Checking now." and len(texts) == 3
    assert "".join(t or "" for t in thoughts) == "Need the weather tool."
    assert chunks[-1].function_calls and chunks[-1].function_calls[0].args == {"city": "Paris"}
    assert all(c.usage_metadata is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.total_token_count == 70
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert fake.validation_errors == []


async def test_wire_formats_sse_and_json_array(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    fake.script(Reply(text="a b c", chunk_delay=0.05), Reply(text="a b c", chunk_delay=0.15, finish="length"))
    body = {"contents": CONTENTS}
    headers = {"x-goog-api-key": "k"}
    base = f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    async with httpx.AsyncClient() as http:
        async with http.stream("POST", f"{base}?alt=sse", json=body, headers=headers) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            raw = b"".join([c async for c in r.aiter_bytes()])
        frames = raw.split(b"\r\n\r\n")
        assert frames[-1] == b"" and all(f.startswith(b"data: ") for f in frames[:-1])
        objs = [msgspec.json.decode(f[6:]) for f in frames[:-1]]
        assert len(objs) == 3
        for obj in objs:
            types.GenerateContentResponse.model_validate(obj)  # the SDK forbids unknown fields
        assert objs[-1]["candidates"][0]["finishReason"] == "STOP"

        arrivals: list[tuple[float, bytes]] = []
        async with http.stream("POST", base, json=body, headers=headers) as r:
            assert r.headers["content-type"].startswith("application/json")
            async for chunk in r.aiter_bytes():
                arrivals.append((time.monotonic(), chunk))
    whole = b"".join(c for _, c in arrivals)
    assert whole.startswith(b"[{") and whole.endswith(b"\n]") and b"\n,\r\n" in whole
    array = msgspec.json.decode(whole)
    assert [o["candidates"][0]["content"]["parts"][0]["text"] for o in array] == ["a ", "b ", "c"]
    assert array[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert arrivals[-1][0] - arrivals[0][0] >= 0.2  # streamed incrementally, not buffered
    assert fake.validation_errors == []


async def test_errors(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    fake.keys = {"AIza-good"}
    aio = client(url, key="AIza-bad").aio
    with pytest.raises(errors.ClientError) as bad_key:
        await aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert bad_key.value.code == 400 and bad_key.value.status == "INVALID_ARGUMENT"
    assert bad_key.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    await aio.aclose()

    fake.script(Reply(status=429, retry_after=7, error_message="Resource has been exhausted"), Reply(status=503))
    aio = client(url, key="AIza-good").aio
    with pytest.raises(errors.ClientError) as limited:
        await aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    detail = limited.value.details["error"]["details"][0]
    assert detail == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
    with pytest.raises(errors.ServerError) as unavailable:
        await aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert unavailable.value.status == "UNAVAILABLE"
    await aio.aclose()
    assert limited.value.response.headers.get("retry-after") is None  # Google signals it in the body only


async def test_count_tokens_models_and_query_key(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    fake.keys = {"AIza-test"}
    fake.script(Reply(usage=Usage(input=77)))
    aio = client(url).aio
    count = await aio.models.count_tokens(model="gemini-2.5-flash", contents="count me")
    models = [m.name async for m in await aio.models.list()]
    one = await aio.models.get(model="gemini-2.5-pro")
    await aio.aclose()
    assert count.total_tokens == 77
    assert models == [f"models/{m}" for m in fake.models]
    assert one.name == "models/gemini-2.5-pro"
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{url}/v1beta/models/gemini-2.5-flash:generateContent?key=AIza-test", json={"contents": CONTENTS}
        )
        assert r.status_code == 200 and r.json()["candidates"][0]["content"]["role"] == "model"
        r = await http.post(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": CONTENTS})
        assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    assert fake.validation_errors == []


async def test_validation(gemini: tuple[FakeGemini, str]) -> None:
    fake, url = gemini
    bad_bodies: list[Any] = [
        {"contents": CONTENTS, "generation_config": {"maxOutputTokens": "lots"}},
        {"contents": [{"role": "user", "parts": [{"txt": "hi"}]}]},
        {"contents": CONTENTS, "temperature": 0.5},
        {"generationConfig": {}},
        {"contents": [{"role": "model", "parts": [{"text": "x", "thoughtSignature": "not base64!"}]}]},
    ]
    async with httpx.AsyncClient() as http:
        for body in bad_bodies:
            r = await http.post(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", json=body)
            assert r.status_code == 400, body
            assert r.json()["error"]["status"] == "INVALID_ARGUMENT" and r.json()["error"]["code"] == 400
        good = {
            "contents": CONTENTS,
            "system_instruction": {"parts": [{"text": "snake_case works too"}]},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        }
        r = await http.post(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", json=good)
        assert r.status_code == 200
    fake.allow_fields = {"sessionId"}
    async with httpx.AsyncClient() as http:
        body = {"contents": CONTENTS, "sessionId": "s"}
        r = await http.post(f"{url}/v1beta/models/gemini-2.5-flash:generateContent", json=body)
        assert r.status_code == 200
    assert len(fake.validation_errors) == 5
    assert "temperature" in fake.validation_errors[2] and "contents is not specified" in fake.validation_errors[3]


# -- Gemini CLI / Cloud Code Assist -------------------------------------------------------------------------


@pytest.fixture
async def cli() -> AsyncIterator[tuple[FakeGeminiCLI, str, httpx.AsyncClient]]:
    fake = FakeGeminiCLI(keys=["ya29.token"], onboarded=False, onboard_polls=1)
    async with (
        serve_on_loopback(fake) as url,
        httpx.AsyncClient(base_url=url, headers={"authorization": "Bearer ya29.token"}) as http,
    ):
        yield fake, url, http


async def test_cli_onboarding_flow(cli: tuple[FakeGeminiCLI, str, httpx.AsyncClient]) -> None:
    fake, _, http = cli
    meta = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
    load = (await http.post("/v1internal:loadCodeAssist", json={"metadata": meta})).json()
    assert "currentTier" not in load
    default_tier = next(t for t in load["allowedTiers"] if t.get("isDefault"))["id"]
    op = (await http.post("/v1internal:onboardUser", json={"tierId": default_tier, "metadata": meta})).json()
    assert op["done"] is False
    op = (await http.post("/v1internal:onboardUser", json={"tierId": default_tier, "metadata": meta})).json()
    assert op["done"] is True and op["response"]["cloudaicompanionProject"]["id"] == fake.project
    load = (await http.post("/v1internal:loadCodeAssist", json={"metadata": meta})).json()
    assert load["currentTier"]["id"] == "free-tier" and load["cloudaicompanionProject"] == fake.project


async def test_cli_generate_and_stream(cli: tuple[FakeGeminiCLI, str, httpx.AsyncClient]) -> None:
    fake, _, http = cli
    fake.script(rich_reply(), rich_reply(chunks=2), Reply(usage=Usage(input=9)))
    envelope = {
        "model": "gemini-2.5-pro",
        "project": fake.project,
        "user_prompt_id": "p-1",
        "request": {"contents": CONTENTS, "session_id": "s-1", "generationConfig": {"temperature": 0.2}},
    }
    r = await http.post("/v1internal:generateContent", json=envelope)
    assert r.status_code == 200
    inner = r.json()["response"]
    types.GenerateContentResponse.model_validate(inner)
    assert inner["modelVersion"] == "gemini-2.5-pro"
    assert [p.get("thought", False) for p in inner["candidates"][0]["content"]["parts"]] == [True, False, False]

    async with http.stream("POST", "/v1internal:streamGenerateContent?alt=sse", json=envelope) as s:
        raw = b"".join([c async for c in s.aiter_bytes()])
    chunks = [msgspec.json.decode(f[6:]) for f in raw.split(b"\r\n\r\n") if f]
    assert all(set(c) == {"response", "traceId"} for c in chunks)
    text = "".join(
        p.get("text", "")
        for c in chunks
        for p in c["response"]["candidates"][0]["content"]["parts"]
        if not p.get("thought")
    )
    assert text == "Checking now."
    assert chunks[-1]["response"]["usageMetadata"]["totalTokenCount"] == 70

    r = await http.post(
        "/v1internal:countTokens", json={"request": {"model": "models/gemini-2.5-pro", "contents": CONTENTS}}
    )
    assert r.json() == {"totalTokens": 9}
    assert fake.validation_errors == []


async def test_cli_auth_and_validation(cli: tuple[FakeGeminiCLI, str, httpx.AsyncClient]) -> None:
    fake, url, http = cli
    r = await http.post("/v1internal:generateContent", json={"model": "gemini-2.5-pro", "project": "p"})
    assert r.status_code == 400 and re.search("request", r.json()["error"]["message"])
    r = await http.post(
        "/v1internal:generateContent", json={"model": "m", "request": {"contents": CONTENTS, "bogus": 1}}
    )
    assert r.status_code == 400
    async with httpx.AsyncClient() as anon:
        r = await anon.post(
            f"{url}/v1internal:generateContent",
            json={"model": "m", "request": {"contents": CONTENTS}},
            headers={"authorization": "Bearer expired"},
        )
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert len(fake.validation_errors) == 2
