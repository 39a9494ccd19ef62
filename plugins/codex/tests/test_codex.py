"""cliproxy-codex: credentials from config, catalog, executor against the fake Responses API, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest

from cliproxy.config import Settings, load_settings
from cliproxy.credentials import Credential, ModelAlias, stable_id
from cliproxy.errors import ProxyError, UpstreamError
from cliproxy.http import HttpClients
from cliproxy.ir import ReasoningConfig
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import UpstreamCall
from cliproxy.testing import FakeOpenAIResponses, Reply, serve_on_loopback
from cliproxy.testing.fakes.base import Conn, Endpoint, Recorded
from cliproxy.testing.proxy import run_proxy
from cliproxy_codex import plugin
from cliproxy_codex.executor import INCOMPLETE_STREAM_MESSAGE, CodexExecutor, is_chatgpt_backend
from cliproxy_codex.models import CATALOG, EFFORT_VARIANTS, by_id, model_rule, split_effort

KEY = "sk-proj-test-key-0001"
CLIENT_KEY = "sk-client-codex-test"


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[plugin]))
    return load_settings(path, dict(host.config_sections().items))


def body(model: str = "gpt-5", **extra: Any) -> bytes:
    data: dict[str, Any] = {"model": model, "input": [{"role": "user", "content": "hello there"}]}
    data.update(extra)
    return msgspec.json.encode(data)


def cred(base_url: str, key: str | None = KEY, **kw: Any) -> Credential:
    return Credential(id="x1", provider="codex", executor="codex", api_key=key, base_url=base_url, **kw)


class FakeResponsesWithCount(FakeOpenAIResponses):
    """The Responses fake plus ``POST /v1/responses/input_tokens``, which API keys use for token counts."""

    def route(self, method: str, path: str) -> Endpoint | None:
        if method == "POST" and path == "/v1/responses/input_tokens":
            return Endpoint(self._input_tokens)
        return super().route(method, path)

    async def _input_tokens(self, rec: Recorded, reply: Reply, conn: Conn) -> None:
        await self.send_json(conn, reply, {"object": "response.input_tokens", "input_tokens": reply.usage.input})


# ------------------------------------------------------------------------------------------------ config


def test_credentials_from_config(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        f"""
codex-api-key:
  - api-key: {KEY}
  - api-key: sk-proj-second
    base-url: https://openai.example.com/v1
    proxy-url: socks5://127.0.0.1:1080
    headers:
      OpenAI-Organization: org-1
    models:
      - name: gpt-5-codex
        alias: codex
  - api-key: "   "
  - api-key: sk-proj-third
    excluded-models: ["gpt-5.1*", "codex-mini-*"]
""",
    )
    creds = plugin.credentials_from_config(settings)
    assert len(creds) == 3
    assert {(c.provider, c.executor, c.label) for c in creds} == {("codex", "codex", "codex-apikey")}
    first, second, third = creds
    assert first.id == stable_id("codex:apikey", KEY, "")
    assert first.base_url == "https://api.openai.com/v1"  # the reference required base-url; we default it
    assert first.models is None
    assert second.id == stable_id("codex:apikey", "sk-proj-second", "https://openai.example.com/v1")
    assert second.base_url == "https://openai.example.com/v1"
    assert second.proxy_url == "socks5://127.0.0.1:1080"
    assert second.headers == {"OpenAI-Organization": "org-1"}
    assert second.models == (ModelAlias("gpt-5-codex", "codex"),)
    assert third.models is not None
    ids = {m.client_id for m in third.models}
    assert "gpt-5-high" in ids and not any(i.startswith(("gpt-5.1", "codex-mini")) for i in ids)


def test_plugin_is_discovered_and_registers_catalog_and_executor(tmp_path: Path) -> None:
    host = PluginHost(make_plugin_manager(entry_points=True))
    settings = settings_from(tmp_path, f"codex-api-key:\n  - api-key: {KEY}\n")
    catalog, owners = host.model_catalog(settings)
    assert owners["codex"] == "codex"
    ids = [m.id for m in catalog["codex"]]
    for expected in (
        "gpt-5",
        "gpt-5-minimal",
        "gpt-5-low",
        "gpt-5-medium",
        "gpt-5-high",
        "gpt-5-codex",
        "gpt-5-codex-low",
        "gpt-5-codex-medium",
        "gpt-5-codex-high",
        "codex-mini-latest",
        "gpt-5.1",
        "gpt-5.1-codex",
        "gpt-5.1-codex-max-xhigh",
    ):
        assert expected in ids
    assert all(m.owned_by == "openai" and m.type == "openai" for m in catalog["codex"])
    assert "codex" in host.executors(settings)


def test_catalog_and_effort_variants() -> None:
    assert len({m.id for m in CATALOG}) == len(CATALOG)
    assert split_effort("gpt-5-high") == ("gpt-5", "high")
    assert split_effort("GPT-5-Minimal") == ("gpt-5", "minimal")
    assert split_effort("gpt-5-codex-low") == ("gpt-5-codex", "low")
    assert split_effort("gpt-5.1-codex-max-xhigh") == ("gpt-5.1-codex-max", "xhigh")
    assert split_effort("gpt-5-codex") == ("gpt-5-codex", None)
    assert split_effort("codex-mini-latest") == ("codex-mini-latest", None)
    for variant, (base, _) in EFFORT_VARIANTS.items():
        assert by_id(variant) is not None and by_id(base) is not None
    gpt5 = by_id("gpt-5")
    assert gpt5 is not None and gpt5.thinking is not None
    assert gpt5.thinking.levels == ("minimal", "low", "medium", "high")
    assert gpt5.input_token_limit == 400000 and gpt5.output_token_limit == 128000
    assert is_chatgpt_backend("https://chatgpt.com/backend-api/codex/")
    assert not is_chatgpt_backend("https://api.openai.com/v1")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-5-high", ("gpt-5", ReasoningConfig(effort="high"))),
        ("gpt-5-minimal", ("gpt-5", ReasoningConfig(effort="minimal"))),
        ("GPT-5-Low", ("gpt-5", ReasoningConfig(effort="low"))),
        ("gpt-5-codex-low", ("gpt-5-codex", ReasoningConfig(effort="low"))),
        ("gpt-5.1-codex-max-xhigh", ("gpt-5.1-codex-max", ReasoningConfig(effort="xhigh"))),
        ("gpt-5-codex-minimal", None),
        ("gpt-5-codex", None),
        ("gpt-5", None),
        ("gemini-2.5-pro-thinking-100", None),
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
async def fake() -> AsyncIterator[tuple[FakeResponsesWithCount, str]]:
    app = FakeResponsesWithCount(keys=[KEY, "oauth-access-token"])
    async with serve_on_loopback(app) as url:
        yield app, url


async def test_api_key_request_is_sent_as_written(fake: tuple[FakeResponsesWithCount, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="hi from openai"))
    ex = CodexExecutor(http)
    original = body(previous_response_id="resp_123", store=True, max_output_tokens=100)
    resp = await ex.execute(UpstreamCall("gpt-5", original, False), cred(url + "/v1", headers={"X-Org": "o"}))
    assert msgspec.json.decode(resp.body)["output"][0]["content"][0]["text"] == "hi from openai"
    rec = up.last
    assert rec.path == "/v1/responses"
    assert rec.header("authorization") == f"Bearer {KEY}"
    assert rec.header("x-org") == "o"
    assert rec.header("session_id") is None and rec.header("version") is None
    assert rec.body == original  # previous_response_id kept: only the ChatGPT backend rejects it
    assert up.validation_errors == []


async def test_effort_suffix_becomes_reasoning_effort(
    fake: tuple[FakeResponsesWithCount, str], http: HttpClients
) -> None:
    up, url = fake
    ex = CodexExecutor(http)
    await ex.execute(
        UpstreamCall("gpt-5-high", body("gpt-5-high", reasoning={"effort": "low", "summary": "auto"}), False),
        cred(url + "/v1"),
    )
    assert up.last.json["model"] == "gpt-5"
    assert up.last.json["reasoning"] == {"effort": "high", "summary": "auto"}
    await ex.execute(UpstreamCall("gpt-5-codex-medium", body("gpt-5-codex-medium"), False), cred(url + "/v1"))
    assert up.last.json["model"] == "gpt-5-codex"
    assert up.last.json["reasoning"] == {"effort": "medium"}
    # Plain models keep the effort they asked for.
    await ex.execute(UpstreamCall("gpt-5", body(reasoning={"effort": "low"}), False), cred(url + "/v1"))
    assert up.last.json["reasoning"] == {"effort": "low"}
    assert up.validation_errors == []


async def test_stream_events_arrive(fake: tuple[FakeResponsesWithCount, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(text="one two three", chunks=3))
    events = [
        ev async for ev in CodexExecutor(http).stream(UpstreamCall("gpt-5", body(stream=True), True), cred(url + "/v1"))
    ]
    kinds = [ev.event for ev in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    deltas = [msgspec.json.decode(ev.data)["delta"] for ev in events if ev.event == "response.output_text.delta"]
    assert "".join(deltas) == "one two three"
    assert up.last.header("accept") == "text/event-stream"


async def test_chatgpt_backend_non_stream_collects_the_stream(
    fake: tuple[FakeResponsesWithCount, str], http: HttpClients
) -> None:
    up, url = fake
    up.script(Reply(text="collected answer", chunks=2))
    ex = CodexExecutor(http)
    backend = cred(
        url + "/backend-api/codex", key=None, metadata={"access_token": "oauth-access-token", "account_id": "acct-1"}
    )
    original = body(
        "gpt-5-codex-high", previous_response_id="resp_1", store=True, temperature=0.3, max_output_tokens=50
    )
    resp = await ex.execute(UpstreamCall("gpt-5-codex-high", original, False), backend)
    data = msgspec.json.decode(resp.body)
    assert data["object"] == "response" and data["status"] == "completed"
    assert data["output"][0]["content"][0]["text"] == "collected answer"
    rec = up.last
    assert rec.path == "/backend-api/codex/responses"
    assert rec.header("authorization") == "Bearer oauth-access-token"
    assert rec.header("chatgpt-account-id") == "acct-1"
    assert rec.header("originator") == "codex_cli_rs"
    assert rec.header("openai-beta") == "responses=experimental"
    assert rec.header("version") and rec.header("session_id")
    assert (rec.header("user-agent") or "").startswith("codex_cli_rs/")
    assert rec.header("accept") == "text/event-stream"
    sent = rec.json
    assert sent["stream"] is True and sent["store"] is False
    assert sent["instructions"] == ""
    assert sent["model"] == "gpt-5-codex" and sent["reasoning"] == {"effort": "high"}
    for dropped in ("previous_response_id", "temperature", "max_output_tokens"):
        assert dropped not in sent
    assert up.validation_errors == []


async def test_chatgpt_backend_stream_without_completion_is_408(http: HttpClients) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        frame = b'event: response.created\ndata: {"type":"response.created","response":{"id":"r"}}\n\n'
        await send({"type": "http.response.body", "body": frame})

    async with serve_on_loopback(app) as url:
        with pytest.raises(UpstreamError) as info:
            await CodexExecutor(http).execute(UpstreamCall("gpt-5", body(), False), cred(url + "/backend-api/codex"))
    assert info.value.status == 408
    assert info.value.message == INCOMPLETE_STREAM_MESSAGE


async def test_chatgpt_backend_failed_response_maps_status(http: HttpClients) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        failed = (
            b'{"type":"response.failed","response":{"id":"r","error":{"code":"rate_limit_exceeded",'
            b'"message":"Rate limit reached","resets_in_seconds":42}}}'
        )
        await send({"type": "http.response.body", "body": b"event: response.failed\ndata: " + failed + b"\n\n"})

    async with serve_on_loopback(app) as url:
        with pytest.raises(UpstreamError) as info:
            await CodexExecutor(http).execute(UpstreamCall("gpt-5", body(), False), cred(url + "/backend-api/codex"))
    assert info.value.status == 429
    assert info.value.retry_after == 42.0
    assert info.value.message == "Rate limit reached"


def test_retry_hint_reads_resets_in_seconds() -> None:
    ex = CodexExecutor(HttpClients())
    body = b'{"error":{"type":"usage_limit_reached","message":"Try again in 3s","resets_in_seconds":42}}'
    assert ex.retry_after_hint(429, {}, body) == 42.0
    assert ex.retry_after_hint(429, {"retry-after": "5"}, body) == 5.0
    assert ex.retry_after_hint(429, {}, b'{"error":{"message":"Please try again in 20ms."}}') == 0.02
    assert ex.retry_after_hint(400, {}, body) is None


async def test_count_tokens(fake: tuple[FakeResponsesWithCount, str], http: HttpClients) -> None:
    up, url = fake
    ex = CodexExecutor(http)
    call = UpstreamCall(
        "gpt-5-low", body("gpt-5-low", stream=True, store=False, max_output_tokens=9), False, action="count_tokens"
    )
    resp = await ex.execute(call, cred(url + "/v1"))
    assert msgspec.json.decode(resp.body)["input_tokens"] == 10
    assert up.last.path == "/v1/responses/input_tokens"
    assert up.last.json == {
        "model": "gpt-5",
        "input": [{"role": "user", "content": "hello there"}],
        "reasoning": {"effort": "low"},
    }
    with pytest.raises(ProxyError) as info:
        await ex.execute(call, cred(url + "/backend-api/codex"))
    assert info.value.status == 501


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        (Reply(status=401, error_message="Incorrect API key provided."), 401, None),
        (Reply(status=429, error_message="Rate limit reached", retry_after=20), 429, 20.0),
        (Reply(status=500, error_message="The server had an error"), 500, None),
    ],
)
async def test_errors_map_to_upstream_error(
    fake: tuple[FakeResponsesWithCount, str],
    http: HttpClients,
    reply: Reply,
    status: int,
    retry_after: float | None,
) -> None:
    up, url = fake
    up.script(reply)
    with pytest.raises(UpstreamError) as info:
        await CodexExecutor(http).execute(UpstreamCall("gpt-5", body(), False), cred(url + "/v1"))
    assert info.value.status == status
    assert info.value.retry_after == retry_after
    assert info.value.message == reply.error_message


async def test_stream_error_before_first_event(fake: tuple[FakeResponsesWithCount, str], http: HttpClients) -> None:
    up, url = fake
    up.script(Reply(status=429, error_message="slow down", retry_after=2))
    with pytest.raises(UpstreamError) as info:
        async for _ in CodexExecutor(http).stream(UpstreamCall("gpt-5", body(stream=True), True), cred(url + "/v1")):
            pass
    assert info.value.status == 429 and info.value.retry_after == 2.0


# ------------------------------------------------------------------------------------------------ end to end


def proxy_config(base: str) -> str:
    return f"api-keys: [{CLIENT_KEY}]\ncodex-api-key:\n  - api-key: {KEY}\n    base-url: {base}\n"


async def test_e2e_openai_responses_pass_through(fake: tuple[FakeResponsesWithCount, str]) -> None:
    up, url = fake
    up.script(Reply(text="pass-through works"), Reply(text="streamed reply here", chunks=3))
    async with run_proxy(proxy_config(url + "/v1")) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.responses.create(model="gpt-5-high", input="hi")
        assert resp.output_text == "pass-through works"
        assert up.last.json["model"] == "gpt-5"
        assert up.last.json["reasoning"] == {"effort": "high"}
        assert up.last.header("authorization") == f"Bearer {KEY}"
        stream = await client.responses.create(model="gpt-5", input="stream", stream=True)
        parts = [ev.delta async for ev in stream if ev.type == "response.output_text.delta"]
        assert "".join(parts) == "streamed reply here"
    assert up.validation_errors == []


async def test_e2e_chatgpt_backend_non_stream(fake: tuple[FakeResponsesWithCount, str]) -> None:
    up, url = fake
    up.script(Reply(text="from the codex backend"))
    async with run_proxy(proxy_config(url + "/backend-api/codex")) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.responses.create(model="gpt-5-codex", input="hi", instructions="be brief")
    assert resp.output_text == "from the codex backend"
    assert up.last.json["stream"] is True and up.last.json["store"] is False
    assert up.validation_errors == []


async def test_e2e_chat_client_is_translated_to_responses(fake: tuple[FakeResponsesWithCount, str]) -> None:
    up, url = fake
    up.script(Reply(text="translated answer"))
    async with run_proxy(proxy_config(url + "/v1")) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.chat.completions.create(
            model="gpt-5-codex-low", messages=[{"role": "user", "content": "hello"}]
        )
    assert resp.choices[0].message.content == "translated answer"
    assert up.last.path == "/v1/responses"
    assert up.last.json["model"] == "gpt-5-codex"
    assert up.last.json["reasoning"]["effort"] == "low"
    assert up.validation_errors == []


async def test_e2e_effort_variant_of_a_configured_model(fake: tuple[FakeResponsesWithCount, str]) -> None:
    """A key that lists its own models still serves their effort variants, through the model rule."""
    up, url = fake
    up.handler = lambda rec: Reply(text="effort ok")
    config = proxy_config(url + "/v1") + "    models:\n      - name: gpt-5\n"
    async with run_proxy(config) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        models = [m.id async for m in client.models.list()]
        assert models == ["gpt-5"]
        resp = await client.chat.completions.create(model="gpt-5-high", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "effort ok"
        assert up.last.json["model"] == "gpt-5" and up.last.json["reasoning"]["effort"] == "high"
        with pytest.raises(openai.BadRequestError, match="unknown provider for model gpt-5-codex-low"):
            await client.chat.completions.create(model="gpt-5-codex-low", messages=[{"role": "user", "content": "x"}])
    assert up.validation_errors == []
