"""cliproxy-gemini: credentials from config, catalog, executor against the fake Gemini API, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from cliproxy.config import Settings, load_settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.errors import UpstreamError
from cliproxy.http import HttpClients
from cliproxy.ir import ReasoningConfig
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import UpstreamCall
from cliproxy.testing import FakeGemini, Reply, serve_on_loopback
from cliproxy.testing.proxy import run_proxy
from cliproxy_gemini import plugin
from cliproxy_gemini.executor import GeminiExecutor, split_model
from cliproxy_gemini.models import CATALOG, by_id, model_rule

KEY = "AIzaSy-test-key-0001"
CLIENT_KEY = "sk-client-gemini-test"
MODEL = "gemini-2.5-flash"


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[plugin]))
    return load_settings(path, dict(host.config_sections().items))


def body(**extra: Any) -> bytes:
    data: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    data.update(extra)
    return msgspec.json.encode(data)


def cred(base_url: str, key: str = KEY, **kw: Any) -> Credential:
    return Credential(id="g1", provider="gemini", executor="gemini", api_key=key, base_url=base_url, **kw)


# ------------------------------------------------------------------------------------------------ config


def test_credentials_from_config_include_legacy_keys(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        f"""
gemini-api-key:
  - api-key: {KEY}
  - api-key: AIzaSy-second
    base-url: https://gemini.example.com
    proxy-url: http://127.0.0.1:3128
    headers:
      X-Goog-User-Project: my-project
    models:
      - name: gemini-2.5-pro
        alias: pro
  - api-key: AIzaSy-third
    excluded-models: ["*-image*", "gemini-3-*"]
generative-language-api-key:
  - AIzaSy-legacy
  - {KEY}
""",
    )
    creds = plugin.credentials_from_config(settings)
    assert [c.api_key for c in creds] == [KEY, "AIzaSy-second", "AIzaSy-third", "AIzaSy-legacy"]
    assert {(c.provider, c.executor, c.label) for c in creds} == {("gemini", "gemini", "gemini-apikey")}
    first, second, third, legacy = creds
    assert first.id == stable_id("gemini:apikey", KEY, "")
    assert first.base_url is None and first.models is None
    assert second.base_url == "https://gemini.example.com"
    assert second.proxy_url == "http://127.0.0.1:3128"
    assert second.headers == {"X-Goog-User-Project": "my-project"}
    assert second.models == (ModelAlias("gemini-2.5-pro", "pro"),)
    assert third.models is not None
    ids = {m.client_id for m in third.models}
    assert ids == {"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite"}
    assert legacy.id == stable_id("gemini:apikey", "AIzaSy-legacy", "")
    assert [c.id for c in plugin.credentials_from_config(settings)] == [c.id for c in creds]


def test_plugin_is_discovered_and_registers_catalog_and_executor(tmp_path: Path) -> None:
    host = PluginHost(make_plugin_manager(entry_points=True))
    settings = settings_from(tmp_path, f"gemini-api-key:\n  - api-key: {KEY}\n")
    catalog, owners = host.model_catalog(settings)
    assert owners["gemini"] == "gemini"
    ids = [m.id for m in catalog["gemini"]]
    for expected in (
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-image-preview",
        "gemini-3-pro-preview",
    ):
        assert expected in ids
    assert "gemini" in host.executors(settings)
    assert host.config_sections().by_owner("gemini") == ["gemini-api-key", "generative-language-api-key"]
    assert host.model_rules(settings).by_owner("gemini") == ["gemini"]
    # API keys have no quota fallbacks (the preview-model switch is Gemini CLI's, in its own plugin).
    assert host.quota_fallbacks(settings).by_owner("gemini") == []


def test_catalog_metadata() -> None:
    pro = by_id("gemini-2.5-pro")
    assert pro is not None and pro.thinking is not None
    assert (pro.thinking.min, pro.thinking.max, pro.thinking.zero_allowed, pro.thinking.dynamic_allowed) == (
        128,
        32768,
        False,
        True,
    )
    flash = by_id("gemini-2.5-flash")
    assert flash is not None and flash.thinking is not None and flash.thinking.zero_allowed
    assert flash.version == "001" and flash.display_name == "Gemini 2.5 Flash"
    assert flash.input_token_limit == 1048576 and flash.output_token_limit == 65536
    assert flash.supported_methods == ("generateContent", "countTokens")
    image = by_id("gemini-2.5-flash-image")
    assert image is not None and image.thinking is None and image.output_token_limit == 8192
    assert all(m.owned_by == "google" and m.type == "gemini" for m in CATALOG)


def test_split_model() -> None:
    assert split_model("gemini-2.5-pro") == ("gemini-2.5-pro", None, None)
    assert split_model("models/gemini-2.5-pro") == ("gemini-2.5-pro", None, None)
    assert split_model("gemini-2.5-flash-thinking-2048") == ("gemini-2.5-flash", 2048, None)
    assert split_model("gemini-2.5-pro-nothinking") == ("gemini-2.5-pro", 128, False)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-flash-nothinking", ("gemini-2.5-flash", ReasoningConfig(budget=0, include_thoughts=False))),
        # 2.5 Pro cannot switch thinking off: the smallest budget it accepts instead of 0.
        ("gemini-2.5-pro-nothinking", ("gemini-2.5-pro", ReasoningConfig(budget=128, include_thoughts=False))),
        ("gemini-2.5-pro-thinking-0", ("gemini-2.5-pro", ReasoningConfig(budget=0))),
        ("gemini-2.5-pro-thinking-4096", ("gemini-2.5-pro", ReasoningConfig(budget=4096))),
        ("gemini-2.5-flash-thinking-12k", ("gemini-2.5-flash", ReasoningConfig(budget=12))),
        ("Gemini-2.5-Flash-Thinking-300", ("Gemini-2.5-Flash", ReasoningConfig(budget=300))),
        ("gemini-x-thinking-1-thinking-77", ("gemini-x-thinking-1", ReasoningConfig(budget=77))),
        ("gemini-2.5-pro-thinking-", None),
        ("gemini-2.5-pro", None),
        ("claude-sonnet-4-thinking-100", None),
        ("my-model-nothinking", None),
        ("gpt-5-high", None),
    ],
)
def test_model_rule(model: str, expected: tuple[str, ReasoningConfig] | None) -> None:
    assert model_rule(model) == expected


# ------------------------------------------------------------------------------------------------ executor


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    clients = HttpClients()
    yield clients
    await clients.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeGemini, str]]:
    app = FakeGemini(keys=[KEY])
    async with serve_on_loopback(app) as url:
        yield app, url


async def test_generate_url_key_headers_and_session_id(fake: tuple[FakeGemini, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="hi from gemini"))
    ex = GeminiExecutor(http)
    call = UpstreamCall(MODEL, body(session_id="abc", generationConfig={"temperature": 0.5}), False)
    resp = await ex.execute(call, cred(url + "/", headers={"X-Goog-User-Project": "proj"}))
    data = msgspec.json.decode(resp.body)
    assert data["candidates"][0]["content"]["parts"][0]["text"] == "hi from gemini"
    rec = up.last
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent"
    assert rec.query == {}
    assert rec.header("x-goog-api-key") == KEY
    assert rec.header("authorization") is None
    assert rec.header("x-goog-user-project") == "proj"
    assert "session_id" not in rec.json
    assert rec.json["generationConfig"] == {"temperature": 0.5}
    assert up.validation_errors == []


async def test_default_base_url(http: HttpClients) -> None:
    ex = GeminiExecutor(http)
    c = cred("")
    assert ex.url(UpstreamCall("gemini-2.5-pro", b"{}", True), c) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert ex.url(UpstreamCall("gemini-2.5-pro", b"{}", False, action="count_tokens"), c).endswith(
        "/v1beta/models/gemini-2.5-pro:countTokens"
    )
    # Unchanged bodies are sent byte for byte.
    raw = body(generationConfig={"thinkingConfig": {"thinkingBudget": 1024}})
    assert ex.prepare(UpstreamCall(MODEL, raw, False), c) == raw


async def test_thinking_config_stripped_for_models_without_thinking(
    fake: tuple[FakeGemini, str], http: HttpClients
) -> None:
    up, url = fake
    ex = GeminiExecutor(http)
    gc = {"temperature": 1.0, "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
    await ex.execute(UpstreamCall("gemini-2.5-flash-image", body(generationConfig=gc), False), cred(url))
    assert up.last.json["generationConfig"] == {"temperature": 1.0}
    await ex.execute(UpstreamCall("gemini-2.5-pro", body(generationConfig=gc), False), cred(url))
    assert up.last.json["generationConfig"]["thinkingConfig"] == gc["thinkingConfig"]
    assert up.validation_errors == []


async def test_thinking_suffix_overrides_budget(fake: tuple[FakeGemini, str], http: HttpClients) -> None:
    up, url = fake
    ex = GeminiExecutor(http)
    gc = {"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}}
    await ex.execute(UpstreamCall("gemini-2.5-flash-thinking-99999", body(generationConfig=gc), False), cred(url))
    assert up.last.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert up.last.json["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}
    await ex.execute(UpstreamCall("gemini-2.5-pro-nothinking", body(), False), cred(url))
    assert up.last.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert up.last.json["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 128, "includeThoughts": False}
    assert up.validation_errors == []


async def test_stream_events_arrive(fake: tuple[FakeGemini, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="alpha beta gamma", chunks=3))
    events = [ev async for ev in GeminiExecutor(http).stream(UpstreamCall(MODEL, body(), True), cred(url))]
    assert len(events) == 3
    text = "".join(msgspec.json.decode(ev.data)["candidates"][0]["content"]["parts"][0]["text"] for ev in events)
    assert text == "alpha beta gamma"
    assert up.last.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert up.last.query == {"alt": "sse"}


async def test_count_tokens_wraps_generate_body(fake: tuple[FakeGemini, str], http: HttpClients) -> None:
    up, url = fake
    ex = GeminiExecutor(http)
    generate_body = body(
        generationConfig={"temperature": 0.1},
        safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
        systemInstruction={"parts": [{"text": "be brief"}]},
        model=MODEL,
    )
    resp = await ex.execute(UpstreamCall(MODEL, generate_body, False, action="count_tokens"), cred(url))
    assert msgspec.json.decode(resp.body)["totalTokens"] == 10
    assert up.last.path == f"/v1beta/models/{MODEL}:countTokens"
    inner = up.last.json["generateContentRequest"]
    assert set(inner) == {"model", "contents", "systemInstruction"}
    assert inner["model"] == f"models/{MODEL}"
    # A plain ``{"contents": ...}`` count body passes untouched.
    plain = body()
    assert ex.prepare(UpstreamCall(MODEL, plain, False, action="count_tokens"), cred(url)) == plain
    assert up.validation_errors == []


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply(status=401, error_message="Request had invalid authentication credentials."), 401, None),
        (Reply(status=429, error_message="Resource has been exhausted", retry_after=12), 429, 12.0),
        (Reply(status=503, error_message="The model is overloaded."), 503, None),
    ],
)
async def test_errors_map_to_upstream_error(
    fake: tuple[FakeGemini, str], http: HttpClients, reply: Reply, status: int, retry_after: float | None
) -> None:
    up, url = fake
    up.script(reply)
    with pytest.raises(UpstreamError) as info:
        await GeminiExecutor(http).execute(UpstreamCall(MODEL, body(), False), cred(url))
    assert info.value.status == status
    assert info.value.retry_after == retry_after
    assert info.value.message == reply.error_message


def test_retry_hint_reads_retry_delay() -> None:
    ex = GeminiExecutor(HttpClients())
    body = (
        b'{"error":{"code":429,"message":"Quota exceeded. Please retry in 38.5s.","status":"RESOURCE_EXHAUSTED",'
        b'"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"38s"}]}}'
    )
    assert ex.retry_after_hint(429, {}, body) == 38.0  # the structured field beats the prose
    assert ex.retry_after_hint(429, {"retry-after": "5"}, body) == 5.0
    assert ex.retry_after_hint(429, {}, b'{"error":{"details":[{"quotaResetDelay":"1500ms"}]}}') == 1.5
    assert ex.retry_after_hint(429, {}, b'{"error":{"message":"Please retry in 7s."}}') == 7.0
    assert ex.retry_after_hint(503, {}, body) is None


async def test_invalid_key_is_reported(fake: tuple[FakeGemini, str], http: HttpClients) -> None:
    _, url = fake
    with pytest.raises(UpstreamError) as info:
        async for _ in GeminiExecutor(http).stream(UpstreamCall(MODEL, body(), True), cred(url, key="wrong")):
            pass
    assert info.value.status == 400
    assert "API key not valid" in info.value.message


# ------------------------------------------------------------------------------------------------ end to end


def proxy_config(upstream: str) -> str:
    return f"api-keys: [{CLIENT_KEY}]\ngemini-api-key:\n  - api-key: {KEY}\n    base-url: {upstream}\n"


def genai_client(base: str) -> genai.Client:
    return genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=base))


async def test_e2e_google_genai_pass_through(fake: tuple[FakeGemini, str]) -> None:
    up, url = fake
    up.script(Reply(text="pass-through works"), Reply(text="one two three", chunks=3))
    async with run_proxy(proxy_config(url)) as proxy:
        client = genai_client(proxy.url)
        resp = await client.aio.models.generate_content(model=MODEL, contents="hi")
        assert resp.text == "pass-through works"
        assert up.last.header("x-goog-api-key") == KEY
        assert up.last.path == f"/v1beta/models/{MODEL}:generateContent"
        parts: list[str] = []
        async for chunk in await client.aio.models.generate_content_stream(model=MODEL, contents="stream"):
            parts.append(chunk.text or "")
        assert "".join(parts) == "one two three"
        assert up.last.query == {"alt": "sse"}
        count = await client.aio.models.count_tokens(model=MODEL, contents="count me")
        assert count.total_tokens == 10
    assert up.validation_errors == []


async def test_e2e_openai_client_is_translated_to_gemini(fake: tuple[FakeGemini, str]) -> None:
    up, url = fake
    up.script(Reply(text="translated answer"))
    async with run_proxy(proxy_config(url)) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == "translated answer"
    assert up.last.path == f"/v1beta/models/{MODEL}:generateContent"
    assert up.validation_errors == []


async def test_e2e_thinking_suffixes(fake: tuple[FakeGemini, str]) -> None:
    up, url = fake
    up.handler = lambda rec: Reply(text="ok")
    async with run_proxy(proxy_config(url)) as proxy:
        client = genai_client(proxy.url)
        resp = await client.aio.models.generate_content(model="gemini-2.5-pro-nothinking", contents="hi")
        assert resp.text == "ok"
        assert up.last.path == "/v1beta/models/gemini-2.5-pro:generateContent"
        thinking = up.last.json["generationConfig"]["thinkingConfig"]
        assert thinking == {"thinkingBudget": 128, "includeThoughts": False}
        chat = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        answer = await chat.chat.completions.create(
            model="gemini-2.5-flash-thinking-2048", messages=[{"role": "user", "content": "hello"}]
        )
        assert answer.choices[0].message.content == "ok"
        assert up.last.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert up.last.json["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 2048
        with pytest.raises(openai.BadRequestError, match=r"unknown provider for model gemini-2\.5-pro-fast"):
            await chat.chat.completions.create(
                model="gemini-2.5-pro-fast", messages=[{"role": "user", "content": "hello"}]
            )
    assert up.validation_errors == []
