"""cliproxy-claude: credentials from config, catalog, executor against the fake Anthropic API, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest

from cliproxy.config import Settings, load_settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.errors import UpstreamError
from cliproxy.http import HttpClients
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import UpstreamCall
from cliproxy.testing import FakeClaude, Reply, serve_on_loopback
from cliproxy.testing.proxy import run_proxy
from cliproxy_claude import plugin
from cliproxy_claude.executor import ClaudeExecutor, merge_betas
from cliproxy_claude.models import CATALOG, by_id

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

KEY = "sk-ant-api03-test-key-0001"
CLIENT_KEY = "sk-client-claude-test"
MODEL = "claude-sonnet-4-5-20250929"


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[plugin]))
    return load_settings(path, dict(host.config_sections().items))


def body(**extra: Any) -> bytes:
    data: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hello there"}],
    }
    data.update(extra)
    return msgspec.json.encode(data)


def cred(base_url: str, key: str = KEY, **kw: Any) -> Credential:
    return Credential(id="c1", provider="claude", executor="claude", api_key=key, base_url=base_url, **kw)


# ------------------------------------------------------------------------------------------------ config


def test_credentials_from_config(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        f"""
claude-api-key:
  - api-key: "  {KEY}  "
  - api-key: sk-ant-api03-second
    base-url: https://claude.example.com/
    proxy-url: socks5://127.0.0.1:1080
    headers:
      X-Team: blue
    models:
      - name: {MODEL}
        alias: sonnet
  - api-key: ""
  - api-key: {KEY}
  - api-key: sk-ant-api03-third
    excluded-models: ["claude-3-*", "*opus*"]
""",
    )
    creds = plugin.credentials_from_config(settings)
    assert [c.provider for c in creds] == ["claude"] * 4
    assert {c.executor for c in creds} == {"claude"}
    first, second, dup, third = creds
    assert first.id == stable_id("claude:apikey", KEY, "")
    assert dup.id == first.id + "-1"
    assert first.api_key == KEY and first.base_url is None and first.models is None
    assert first.label == "claude-apikey"
    assert second.id == stable_id("claude:apikey", "sk-ant-api03-second", "https://claude.example.com/")
    assert second.base_url == "https://claude.example.com/"
    assert second.proxy_url == "socks5://127.0.0.1:1080"
    assert second.headers == {"X-Team": "blue"}
    assert second.models == (ModelAlias(MODEL, "sonnet"),)
    assert second.upstream_model("SONNET") == MODEL
    assert third.models is not None
    ids = {m.client_id for m in third.models}
    assert "claude-sonnet-4-5-20250929" in ids
    assert not any(i.startswith("claude-3-") or "opus" in i for i in ids)
    # Same config, same ids: cooldown state survives a reload.
    assert [c.id for c in plugin.credentials_from_config(settings)] == [c.id for c in creds]
    # Secrets never appear in what may be logged.
    assert KEY not in repr(first.redacted())


def test_plugin_is_discovered_and_registers_catalog_and_executor(tmp_path: Path) -> None:
    host = PluginHost(make_plugin_manager(entry_points=True))
    settings = settings_from(tmp_path, f"claude-api-key:\n  - api-key: {KEY}\n")
    catalog, owners = host.model_catalog(settings)
    assert owners["claude"] == "claude"
    ids = [m.id for m in catalog["claude"]]
    for expected in (
        "claude-opus-4-5-20251101",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-4-20250514",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
    ):
        assert expected in ids
    assert all(m.owned_by == "anthropic" and m.type == "claude" for m in catalog["claude"])
    assert "claude" in host.executors(settings)
    assert [c.provider for c in host.credentials_from_config(settings)] == ["claude"]


def test_catalog_thinking_ranges() -> None:
    sonnet = by_id("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.thinking is not None
    assert sonnet.thinking.min == 1024 and sonnet.thinking.max < sonnet.output_token_limit
    haiku35 = by_id("claude-3-5-haiku-20241022")
    assert haiku35 is not None and haiku35.thinking is None
    assert len({m.id for m in CATALOG}) == len(CATALOG)


def test_merge_betas() -> None:
    assert merge_betas("a, b", ("b", "c"), None, "") == "a,b,c"


# ------------------------------------------------------------------------------------------------ executor


@pytest.fixture
async def http() -> AsyncIterator[HttpClients]:
    clients = HttpClients()
    yield clients
    await clients.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeClaude, str]]:
    app = FakeClaude(keys=[KEY, "third-party-key"])
    async with serve_on_loopback(app) as url:
        yield app, url


async def test_execute_sends_api_key_version_and_entry_headers(fake: tuple[FakeClaude, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="hi from claude"))
    ex = ClaudeExecutor(http)
    original = body(system="You are terse.")
    call = UpstreamCall(model=MODEL, body=original, stream=False, client_format="openai")
    resp = await ex.execute(call, cred(url, headers={"X-Team": "blue", "anthropic-version": "2023-06-01"}))
    assert resp.status == 200
    assert msgspec.json.decode(resp.body)["content"][0]["text"] == "hi from claude"
    rec = up.last
    assert rec.path == "/v1/messages" and rec.query == {"beta": "true"}
    assert rec.header("x-api-key") == KEY
    assert rec.header("authorization") is None
    assert rec.header("anthropic-version") == "2023-06-01"
    assert rec.header("x-team") == "blue"
    assert rec.header("anthropic-beta") is None
    assert rec.header("accept") == "application/json"
    # API keys get the body as written: no Claude Code identity block, system prompt untouched.
    assert rec.body == original
    assert rec.json["system"] == "You are terse."
    assert up.validation_errors == []


async def test_client_betas_forwarded_only_for_claude_clients(fake: tuple[FakeClaude, str], http: HttpClients) -> None:
    up, url = fake
    ex = ClaudeExecutor(http)
    headers = {"anthropic-beta": "context-1m-2025-08-07, prompt-caching-2024-07-31", "anthropic-version": "2023-06-01"}
    await ex.execute(UpstreamCall(MODEL, body(), False, client_format="claude", client_headers=headers), cred(url))
    assert up.last.header("anthropic-beta") == "context-1m-2025-08-07,prompt-caching-2024-07-31"
    await ex.execute(UpstreamCall(MODEL, body(), False, client_format="openai", client_headers=headers), cred(url))
    assert up.last.header("anthropic-beta") is None


async def test_third_party_host_gets_bearer(fake: tuple[FakeClaude, str], http: HttpClients) -> None:
    up, url = fake
    ex = ClaudeExecutor(http)
    await ex.execute(UpstreamCall(MODEL, body(), False), cred(url, key="third-party-key"))
    assert up.last.header("authorization") == "Bearer third-party-key"
    assert up.last.header("x-api-key") is None
    # An OAuth token pasted as a key stays Bearer even on api.anthropic.com.
    oat = cred("https://api.anthropic.com", key="sk-ant-oat01-abc")
    assert ex.auth_headers(oat) == {"Authorization": "Bearer sk-ant-oat01-abc"}
    official = cred("", key="plain-key")
    assert ex.auth_headers(official) == {"x-api-key": "plain-key"}
    assert ex.url(UpstreamCall(MODEL, b"{}", False), official) == "https://api.anthropic.com/v1/messages?beta=true"


async def test_stream_events_arrive(fake: tuple[FakeClaude, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="one two three", chunks=3))
    ex = ClaudeExecutor(http)
    events = [ev async for ev in ex.stream(UpstreamCall(MODEL, body(stream=True), True), cred(url))]
    kinds = [ev.event for ev in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    text = "".join(msgspec.json.decode(ev.data)["delta"]["text"] for ev in events if ev.event == "content_block_delta")
    assert text == "one two three"
    assert up.last.header("accept") == "text/event-stream"
    assert up.validation_errors == []


async def test_count_tokens_endpoint_and_body(fake: tuple[FakeClaude, str], http: HttpClients) -> None:
    up, url = fake
    ex = ClaudeExecutor(http)
    call = UpstreamCall(MODEL, body(stream=True, temperature=0.2), False, action="count_tokens")
    resp = await ex.execute(call, cred(url))
    assert msgspec.json.decode(resp.body) == {"input_tokens": 10}
    assert up.last.path == "/v1/messages/count_tokens" and up.last.query == {"beta": "true"}
    assert set(up.last.json) == {"model", "messages"}
    assert up.validation_errors == []


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply(status=401, error_message="invalid x-api-key"), 401, None),
        (Reply(status=429, error_message="rate limited", retry_after=7), 429, 7.0),
        (Reply(status=529, error_message="Overloaded"), 529, None),
    ],
)
async def test_errors_map_to_upstream_error(
    fake: tuple[FakeClaude, str], http: HttpClients, reply: Reply, status: int, retry_after: float | None
) -> None:
    up, url = fake
    up.script(reply)
    with pytest.raises(UpstreamError) as info:
        await ClaudeExecutor(http).execute(UpstreamCall(MODEL, body(), False), cred(url))
    assert info.value.status == status
    assert info.value.retry_after == retry_after
    assert info.value.message == reply.error_message
    assert b'"type":"error"' in info.value.body


async def test_stream_error_status_is_raised_before_first_event(
    fake: tuple[FakeClaude, str], http: HttpClients
) -> None:
    up, url = fake
    up.script(Reply(status=429, error_message="slow down", retry_after=3))
    with pytest.raises(UpstreamError) as info:
        async for _ in ClaudeExecutor(http).stream(UpstreamCall(MODEL, body(stream=True), True), cred(url)):
            pass
    assert info.value.status == 429 and info.value.retry_after == 3.0


async def test_error_event_before_content_fails_over(http: HttpClients) -> None:
    """Anthropic answers 200 and then ``event: error`` when overloaded: treat it as a 529 we can retry."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        payload = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"event: error\ndata: " + payload + b"\n\n"})

    async with serve_on_loopback(app) as url:
        with pytest.raises(UpstreamError) as info:
            async for _ in ClaudeExecutor(http).stream(UpstreamCall(MODEL, body(stream=True), True), cred(url)):
                pass
    assert info.value.status == 529
    assert info.value.message == "Overloaded"


async def test_unreachable_upstream_is_a_network_error(http: HttpClients) -> None:
    with pytest.raises(UpstreamError) as info:
        await ClaudeExecutor(http).execute(UpstreamCall(MODEL, body(), False), cred("http://127.0.0.1:9"))
    assert info.value.network and info.value.status == 502


# ------------------------------------------------------------------------------------------------ end to end


def proxy_config(upstream: str) -> str:
    return (
        f"api-keys: [{CLIENT_KEY}]\n"
        "claude-api-key:\n"
        f"  - api-key: {KEY}\n"
        f"    base-url: {upstream}\n"
        "    headers:\n"
        "      X-Team: blue\n"
    )


async def test_e2e_anthropic_sdk_pass_through(fake: tuple[FakeClaude, str]) -> None:
    up, url = fake
    up.script(Reply(text="pass-through works"), Reply(text="streamed reply here", chunks=3))
    async with run_proxy(proxy_config(url)) as proxy:
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        msg = await client.messages.create(
            model=MODEL,
            max_tokens=128,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        )
        assert msg.content[0].type == "text" and msg.content[0].text == "pass-through works"
        assert up.last.header("x-api-key") == KEY
        assert up.last.header("anthropic-beta") == "prompt-caching-2024-07-31"
        assert up.last.header("x-team") == "blue"
        assert up.last.json["model"] == MODEL
        parts: list[str] = []
        async with client.messages.stream(
            model=MODEL, max_tokens=128, messages=[{"role": "user", "content": "stream"}]
        ) as stream:
            async for text in stream.text_stream:
                parts.append(text)
        assert "".join(parts) == "streamed reply here"
        count = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert count.input_tokens == 10
    assert up.validation_errors == []


async def test_e2e_openai_client_is_translated_to_claude(fake: tuple[FakeClaude, str]) -> None:
    up, url = fake
    up.script(Reply(text="translated answer"))
    async with run_proxy(proxy_config(url)) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=64
        )
    assert resp.choices[0].message.content == "translated answer"
    assert up.last.path == "/v1/messages" and up.last.header("x-api-key") == KEY
    assert up.validation_errors == []


async def test_e2e_upstream_429_reaches_client_with_retry_after(fake: tuple[FakeClaude, str]) -> None:
    up, url = fake
    up.script(Reply(status=429, error_message="rate limited", retry_after=5))
    async with run_proxy(proxy_config(url)) as proxy, httpx.AsyncClient(timeout=30) as client:
        resp = await client.post(
            proxy.v1 + "/chat/completions",
            headers={"Authorization": f"Bearer {CLIENT_KEY}"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        )
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
