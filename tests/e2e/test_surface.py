"""HTTP surface details real clients depend on: errors in each dialect, mid-stream failures, routing quirks."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest

from cliproxy.sse import SSEParser
from cliproxy.testing import Reply

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.usefixtures("fresh_pool")]


def auth(env: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.key}"}


# ------------------------------------------------------------------ errors keep status, change shape


@pytest.mark.parametrize("upstream", ["openai", "responses", "claude", "gemini"])
async def test_upstream_400_reaches_claude_client_in_claude_shape(env: Any, upstream: str) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(status=400, error_message="prompt is too long: 300000 tokens"))
    async with anthropic.AsyncAnthropic(base_url=env.proxy.url, api_key=env.key, max_retries=0) as c:
        with pytest.raises(anthropic.BadRequestError) as exc:
            await c.messages.create(
                model=env.models[upstream], max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
    body = exc.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "prompt is too long" in body["error"]["message"]
    assert len(fake.requests) == 1


@pytest.mark.parametrize("upstream", ["openai", "claude", "gemini"])
async def test_upstream_error_in_gemini_shape(env: Any, upstream: str) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(status=400, error_message="bad thing"))
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/{env.models[upstream]}:generateContent",
            headers={"x-goog-api-key": env.key},
            json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
        )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == 400 and err["status"] == "INVALID_ARGUMENT" and "bad thing" in err["message"]


async def test_same_family_error_passes_through_verbatim(env: Any) -> None:
    fake = env.fakes["openai"]
    fake.reset()
    raw = b'{"error":{"message":"custom upstream text","type":"invalid_request_error","param":"messages","code":"x1"}}'
    fake.script(Reply(status=400, error_body=raw))
    async with httpx.AsyncClient() as http:
        r = await http.post(
            env.proxy.v1 + "/chat/completions",
            headers=auth(env),
            json={"model": env.models["openai"], "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 400 and r.content == raw


# ------------------------------------------------------------------ failures after the first byte


def events(body: bytes) -> list[tuple[str | None, Any]]:
    p = SSEParser()
    out = []
    for ev in p.feed(body) + p.close():
        out.append((ev.event, None if ev.data == b"[DONE]" else msgspec.json.decode(ev.data)))
    return out


@pytest.mark.parametrize("upstream", ["openai", "responses", "claude", "gemini"])
@pytest.mark.parametrize("client", ["openai", "responses", "claude", "gemini"])
async def test_mid_stream_failure_ends_with_dialect_error(env: Any, client: str, upstream: str) -> None:
    fake = env.fakes[upstream]
    fake.reset()
    fake.script(Reply(text="one two three four five six seven eight", chunks=8, fail_mid_stream=True, fail_after=4))
    model = env.models[upstream]
    if client == "openai":
        url, body = (
            env.proxy.v1 + "/chat/completions",
            {"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]},
        )
    elif client == "responses":
        url, body = env.proxy.v1 + "/responses", {"model": model, "stream": True, "input": "x"}
    elif client == "claude":
        url, body = (
            env.proxy.url + "/v1/messages",
            {"model": model, "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]},
        )
    else:
        url = f"{env.proxy.url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url, headers=auth(env), json=body)
    assert r.status_code == 200
    evs = events(r.content)
    assert evs, "empty stream"
    last_event, last = evs[-1]
    if client == "openai":
        assert isinstance(last, dict) and "error" in last
        assert all(data is not None for _, data in evs), "[DONE] must not follow an error"
    elif client == "responses":
        assert last_event in ("response.failed", "error")
        assert not any(e == "response.completed" for e, _ in evs)
    elif client == "claude":
        assert last_event == "error" and last["type"] == "error"
        assert not any(e == "message_stop" for e, _ in evs)
    else:
        assert "error" in last


# ------------------------------------------------------------------ routing quirks


async def test_gemini_routes_accept_slashes_and_reject_unknown_methods(env: Any) -> None:
    fake = env.fakes["openai"]
    fake.reset()
    fake.script(Reply(text="routed"))
    async with httpx.AsyncClient() as http:
        # The compat model alias contains no slash; the full "models/<id>" form must route too.
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/models/{env.models['openai']}:generateContent",
            headers={"x-goog-api-key": env.key},
            json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/org/some-model:generateContent",
            headers={"x-goog-api-key": env.key},
            json={"contents": []},
        )
        assert r.status_code == 400 and "unknown provider for model org/some-model" in r.json()["error"]["message"]
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/gemini-2.5-flash:foo", headers={"x-goog-api-key": env.key}, json={}
        )
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


async def test_model_listings(env: Any) -> None:
    async with httpx.AsyncClient() as http:
        oai = (await http.get(env.proxy.v1 + "/models", headers=auth(env))).json()
        assert oai["object"] == "list"
        ids = {m["id"] for m in oai["data"]}
        assert set(env.models.values()) <= ids
        assert set(oai["data"][0]) == {"id", "object", "created", "owned_by"}
        cl = (
            await http.get(
                env.proxy.v1 + "/models", headers={**auth(env), "user-agent": "claude-cli/2.1.197 (external, sdk-cli)"}
            )
        ).json()
        assert "object" not in cl and {m["id"] for m in cl["data"]} == ids
        gem = (await http.get(env.proxy.url + "/v1beta/models", headers={"x-goog-api-key": env.key})).json()
        names = {m["name"] for m in gem["models"]}
        assert "models/gemini-2.5-flash" in names and all(n.startswith("models/") for n in names)
        assert all(m["supportedGenerationMethods"] for m in gem["models"])
        one = (
            await http.get(env.proxy.url + "/v1beta/models/gemini-2.5-flash", headers={"x-goog-api-key": env.key})
        ).json()
        assert one["name"] == "models/gemini-2.5-flash"
        missing = await http.get(env.proxy.url + "/v1beta/models/nope", headers={"x-goog-api-key": env.key})
        assert missing.status_code == 404
    async with openai.AsyncOpenAI(base_url=env.proxy.v1, api_key=env.key, max_retries=0) as c:
        m = await c.models.retrieve(env.models["openai"])
        assert m.id == env.models["openai"]


async def test_claude_code_probe_and_beta_query(env: Any) -> None:
    fake = env.fakes["claude"]
    fake.reset()
    fake.script(Reply(text="hi"))
    async with httpx.AsyncClient() as http:
        assert (await http.head(env.proxy.url + "/")).status_code < 500
        r = await http.post(
            env.proxy.url + "/v1/messages?beta=true",
            headers={"x-api-key": env.key, "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"},
            json={"model": env.models["claude"], "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "hi"


@pytest.mark.parametrize("upstream", ["openai", "responses", "claude", "gemini"])
async def test_count_tokens_in_client_shape(env: Any, upstream: str) -> None:
    env.fakes[upstream].reset()
    async with anthropic.AsyncAnthropic(base_url=env.proxy.url, api_key=env.key, max_retries=0) as c:
        res = await c.messages.count_tokens(
            model=env.models[upstream], messages=[{"role": "user", "content": "How many tokens is this?"}]
        )
    assert res.input_tokens > 0
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{env.proxy.url}/v1beta/models/{env.models[upstream]}:countTokens",
            headers={"x-goog-api-key": env.key},
            json={"contents": [{"role": "user", "parts": [{"text": "How many tokens is this?"}]}]},
        )
    assert r.status_code == 200, r.text
    assert r.json()["totalTokens"] > 0


async def test_legacy_completions(env: Any) -> None:
    fake = env.fakes["openai"]
    fake.reset()
    fake.script(Reply(text="four"), Reply(text="five six", chunks=2))
    async with openai.AsyncOpenAI(base_url=env.proxy.v1, api_key=env.key, max_retries=0) as c:
        r = await c.completions.create(model=env.models["openai"], prompt="2+2=")
        assert r.object == "text_completion" and r.choices[0].text == "four"
        s = await c.completions.create(model=env.models["openai"], prompt="count", stream=True)
        text = "".join([ch.choices[0].text async for ch in s if ch.choices])
        assert text == "five six"
    assert fake.requests[0].json["messages"] == [{"role": "user", "content": "2+2="}]


# ------------------------------------------------------------------ Gemini CLI Code Assist surface


async def test_code_assist_account_methods_answer_locally(env: Any) -> None:
    async with httpx.AsyncClient() as http:
        load = await http.post(
            env.proxy.url + "/v1internal:loadCodeAssist",
            json={"metadata": {"ideType": "IDE_UNSPECIFIED", "pluginType": "GEMINI"}},
        )
        assert load.status_code == 200
        body = load.json()
        assert body["currentTier"]["id"] and body["cloudaicompanionProject"]
        onboard = await http.post(env.proxy.url + "/v1internal:onboardUser", json={"tierId": "standard-tier"})
        assert onboard.json()["done"] is True
        assert onboard.json()["response"]["cloudaicompanionProject"]["id"]
        quota = await http.post(env.proxy.url + "/v1internal:retrieveUserQuota", json={"project": "p"})
        assert quota.status_code == 200
        exp = await http.post(env.proxy.url + "/v1internal:listExperiments", json={"project": "p"})
        assert exp.status_code == 200


async def test_code_assist_refuses_remote_peers_even_with_forwarded_for(env: Any) -> None:
    """The peer address decides; a forwarded-for header from a remote peer is not trusted."""
    sent: list[dict[str, Any]] = []
    body = b"{}"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1internal:loadCodeAssist",
        "raw_path": b"/v1internal:loadCodeAssist",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-forwarded-for", b"127.0.0.1")],
        "client": ("203.0.113.7", 40000),
        "server": ("127.0.0.1", 8317),
        "state": {},
    }
    await env.proxy.app(scope, receive, send)
    assert sent[0]["status"] == 403
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    assert msgspec.json.decode(payload)["error"]["status"] == "PERMISSION_DENIED"


async def test_code_assist_over_ipv6_loopback() -> None:
    import socket

    from cliproxy.testing.proxy import run_proxy

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    async with run_proxy("") as h:
        from cliproxy.testing import serve_on_loopback

        async with serve_on_loopback(h.app, host="::1") as url, httpx.AsyncClient() as http:
            r = await http.post(url + "/v1internal:loadCodeAssist", json={})
    assert r.status_code == 200


async def test_upstream_error_echoing_a_key_is_redacted(env: Any) -> None:
    fake = env.fakes["openai"]
    fake.reset()
    fake.script(Reply(status=401, error_message="Incorrect API key provided: up-openai. Bearer up-openai-xyz123"))
    async with httpx.AsyncClient() as http:
        r = await http.post(
            env.proxy.v1 + "/chat/completions",
            headers=auth(env),
            json={"model": env.models["openai"], "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code in (401, 503, 429)
    assert "up-openai" not in r.text and "xyz123" not in r.text
