"""ChatGPT logins against the fake ChatGPT backend: the executor's wire contract, and cliproxy end to end."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from cliproxy.config import load_settings
from cliproxy.credentials import Credential
from cliproxy.errors import UpstreamError
from cliproxy.http import HttpClients
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.testing import Reply, serve_on_loopback
from cliproxy.testing.proxy import run_proxy
from cliproxy_codex.chatgpt import DEFAULT_INSTRUCTIONS
from cliproxy_codex.executor import CodexExecutor
from cliproxy_codex.testing import BACKEND_PREFIX, FakeChatGPTBackend, FakeOpenAIAuth, chatgpt_claims

CLIENT_KEY = "sk-client-chatgpt-test"
TOKEN_A, ACCOUNT_A = "at-alice-0001", "acct-alice"
TOKEN_B, ACCOUNT_B = "at-bob-0002", "acct-bob"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def oauth_cred(token: str = TOKEN_A, account: str = ACCOUNT_A) -> Credential:
    meta = {"access_token": token, "account_id": account, "email": "alice@example.com", "type": "codex"}
    return Credential(id="codex-alice.json", provider="codex", executor="codex", label="alice", metadata=meta)


def body(model: str = "gpt-5-codex", **extra: Any) -> bytes:
    data: dict[str, Any] = {"model": model, "input": [{"role": "user", "content": "hello there"}]}
    data.update(extra)
    return msgspec.json.encode(data)


@pytest.fixture
async def backend() -> AsyncIterator[tuple[FakeChatGPTBackend, str]]:
    fake = FakeChatGPTBackend(accounts={TOKEN_A: ACCOUNT_A, TOKEN_B: ACCOUNT_B})
    async with serve_on_loopback(fake) as url:
        yield fake, url


@pytest.fixture
async def executor(backend: tuple[FakeChatGPTBackend, str]) -> AsyncIterator[CodexExecutor]:
    _, url = backend
    http = HttpClients()
    settings = msgspec.structs.replace(load_settings(None), endpoints={"codex": {"api-url": url + BACKEND_PREFIX}})
    yield CodexExecutor(http, ExecutorServices(http=http, settings=settings))
    await http.aclose()


# ------------------------------------------------------------------------------------------------ executor


async def test_a_chatgpt_login_speaks_codex_cli_to_the_backend(
    backend: tuple[FakeChatGPTBackend, str], executor: CodexExecutor
) -> None:
    fake, _ = backend
    fake.script(Reply(text="collected answer", reasoning="thinking it over"))
    original = body("gpt-5-codex-high", instructions="Answer tersely.", temperature=0.2, max_output_tokens=50)
    resp = await executor.execute(UpstreamCall("gpt-5-codex-high", original, False), oauth_cred())
    data = msgspec.json.decode(resp.body)
    [message] = [item for item in data["output"] if item["type"] == "message"]
    assert message["content"][0]["text"] == "collected answer"
    assert data["usage"]["input_tokens"] == 10 and data["usage"]["output_tokens"] == 5
    rec = fake.last
    assert rec.path == "/backend-api/codex/responses"
    assert rec.header("authorization") == f"Bearer {TOKEN_A}"
    assert rec.header("chatgpt-account-id") == ACCOUNT_A
    assert rec.header("originator") == "codex_cli_rs"
    assert rec.header("accept") == "text/event-stream"
    assert rec.header("openai-beta") == "responses=experimental"
    assert rec.header("version") and rec.header("session_id")
    assert (rec.header("user-agent") or "").startswith("codex_cli_rs/")
    sent = rec.json
    assert (sent["stream"], sent["store"], sent["model"]) == (True, False, "gpt-5-codex")
    assert sent["reasoning"] == {"effort": "high"}
    assert sent["instructions"] == "Answer tersely."  # the client's own instructions, where it put them
    assert sent["input"] == [{"role": "user", "content": "hello there"}]
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert "temperature" not in sent and "max_output_tokens" not in sent
    assert fake.served == [(ACCOUNT_A, "gpt-5-codex")]
    assert fake.validation_errors == []


async def test_instructions_come_from_the_leading_developer_message(
    backend: tuple[FakeChatGPTBackend, str], executor: CodexExecutor
) -> None:
    """Codex CLI puts its prompt in a leading developer message; the backend wants it as ``instructions``."""
    fake, _ = backend
    prompt = "You are a coding agent running in the Codex CLI."
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": prompt}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions/>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ]
    raw = msgspec.json.encode({"model": "gpt-5-codex", "input": items, "stream": True, "store": False})
    await executor.execute(UpstreamCall("gpt-5-codex", raw, False), oauth_cred())
    sent = fake.last.json
    assert sent["instructions"] == prompt
    assert sent["input"] == items[1:]  # nothing moved into a user turn, the rest in order
    # No system prompt anywhere: the backend still gets instructions, the conversation stays as sent.
    await executor.execute(UpstreamCall("gpt-5", body("gpt-5"), False), oauth_cred())
    assert fake.last.json["instructions"] == DEFAULT_INSTRUCTIONS
    assert fake.last.json["input"] == [{"role": "user", "content": "hello there"}]
    assert fake.validation_errors == []


async def test_streamed_events_and_an_empty_final_output(
    backend: tuple[FakeChatGPTBackend, str], executor: CodexExecutor
) -> None:
    fake, _ = backend
    fake.completed_output = False
    fake.script(Reply(text="one two three", chunks=3), Reply(text="rebuilt answer"))
    call = UpstreamCall("gpt-5-codex", body(stream=True), True)
    events = [ev async for ev in executor.stream(call, oauth_cred())]
    deltas = [msgspec.json.decode(ev.data)["delta"] for ev in events if ev.event == "response.output_text.delta"]
    assert "".join(deltas) == "one two three" and events[-1].event == "response.completed"
    resp = await executor.execute(UpstreamCall("gpt-5-codex", body(), False), oauth_cred())
    output = msgspec.json.decode(resp.body)["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[1]["content"][0]["text"] == "rebuilt answer"


async def test_usage_limits_state_when_the_account_comes_back(
    backend: tuple[FakeChatGPTBackend, str], executor: CodexExecutor
) -> None:
    fake, _ = backend
    fake.limit(ACCOUNT_A, 7200)
    with pytest.raises(UpstreamError) as info:
        await executor.execute(UpstreamCall("gpt-5-codex", body(), False), oauth_cred())
    assert info.value.status == 429 and info.value.message == "The usage limit has been reached"
    assert info.value.retry_after is not None and 7190 <= info.value.retry_after <= 7200
    with pytest.raises(UpstreamError) as streamed:
        async for _ in executor.stream(UpstreamCall("gpt-5-codex", body(stream=True), True), oauth_cred()):
            pass
    assert streamed.value.status == 429 and streamed.value.retry_after == info.value.retry_after
    # A plan without Codex is refused for good: it rests like a forbidden key, not like a rate limit.
    raw = b'{"error":{"type":"usage_not_included","message":"Upgrade to Plus to use Codex","plan_type":"free"}}'
    err = executor.error(429, {}, raw)
    assert (err.status, err.message, err.retry_after) == (403, "Upgrade to Plus to use Codex", None)
    # Newer answers state an epoch instead of seconds.
    later = int(time.time()) + 600
    err = executor.error(429, {}, msgspec.json.encode({"error": {"type": "usage_limit_reached", "resets_at": later}}))
    assert err.retry_after is not None and 595 <= err.retry_after <= 601


async def test_a_stream_that_fails_at_once_can_fail_over(executor: CodexExecutor) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        error = b'{"type":"error","error":{"type":"usage_limit_reached","resets_in_seconds":30},"status_code":429}'
        await send({"type": "http.response.body", "body": b"event: error\ndata: " + error + b"\n\n"})

    async with serve_on_loopback(app) as url:
        cred = msgspec.structs.replace(oauth_cred(), base_url=url + BACKEND_PREFIX)
        with pytest.raises(UpstreamError) as info:
            async for _ in executor.stream(UpstreamCall("gpt-5", body(stream=True), True), cred):
                pass
    assert info.value.status == 429 and info.value.retry_after == 30


# ------------------------------------------------------------------------------------------------ the fake


async def test_the_fake_refuses_what_the_backend_refuses(backend: tuple[FakeChatGPTBackend, str]) -> None:
    fake, url = backend
    good = {"model": "gpt-5", "input": "hi", "instructions": "x", "stream": True, "store": False}
    auth = {"Authorization": f"Bearer {TOKEN_A}", "chatgpt-account-id": ACCOUNT_A}
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        (dict(good, stream=False), auth, 400, "Stream must be set to true"),
        ({k: v for k, v in good.items() if k != "store"}, auth, 400, "Store must be set to false"),
        ({k: v for k, v in good.items() if k != "instructions"}, auth, 400, "Instructions are required"),
        (dict(good, max_output_tokens=10), auth, 400, "Unsupported parameter: max_output_tokens"),
        (good, {"Authorization": f"Bearer {TOKEN_A}"}, 403, "chatgpt-account-id"),
        (good, {**auth, "chatgpt-account-id": ACCOUNT_B}, 403, "chatgpt-account-id"),
        (good, {**auth, "Authorization": "Bearer nope"}, 401, "authentication token"),
    ]
    async with httpx.AsyncClient() as client:
        for payload, headers, status, text in cases:
            resp = await client.post(f"{url}{BACKEND_PREFIX}/responses", json=payload, headers=headers)
            assert (resp.status_code, text in resp.text) == (status, True), (payload, headers, resp.text)
        ok = await client.post(f"{url}{BACKEND_PREFIX}/responses", json=good, headers=auth)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/event-stream")
    assert len(fake.rejections) == len(cases) and len(fake.validation_errors) == len(cases) - 1


# ------------------------------------------------------------------------------------------------ end to end


def write_auth(directory: Path, name: str, **fields: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"codex-{name}@example.com.json"
    now = time.time()
    data = {
        "id_token": "",
        "access_token": fields.pop("access_token"),
        "refresh_token": fields.pop("refresh_token", f"rt-{name}"),
        "account_id": fields.pop("account_id"),
        "last_refresh": iso(now - 3600),
        "email": f"{name}@example.com",
        "type": "codex",
        "expired": iso(fields.pop("expired", now + 9 * 86400)),
    }
    data.update(fields)
    path.write_bytes(msgspec.json.encode(data))
    return path


def proxy_config(auth_dir: Path, backend_url: str, token_url: str = "http://127.0.0.1:9/oauth/token") -> str:
    return (
        f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auth_dir}\nrequest-retry: 0\n"
        f"endpoints:\n  codex:\n    api-url: {backend_url}{BACKEND_PREFIX}\n    token-url: {token_url}\n"
    )


async def test_every_sdk_reaches_the_backend_with_the_accounts_token(
    tmp_path: Path, backend: tuple[FakeChatGPTBackend, str]
) -> None:
    fake, url = backend
    auths = tmp_path / "auths"
    write_auth(auths, "alice", access_token=TOKEN_A, account_id=ACCOUNT_A)
    async with run_proxy(proxy_config(auths, url)) as proxy:
        oa = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        fake.script(Reply(text="chat answer"))
        chat = await oa.chat.completions.create(
            model="gpt-5-codex",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            max_tokens=200,
            temperature=0.5,
        )
        assert chat.choices[0].message.content == "chat answer"
        assert chat.usage is not None and chat.usage.prompt_tokens == 10 and chat.usage.completion_tokens == 5
        assert fake.last.json["instructions"] == "Be brief."
        assert "max_output_tokens" not in fake.last.json and "temperature" not in fake.last.json

        fake.script(Reply(text="streamed chat answer", chunks=3))
        stream = await oa.chat.completions.create(
            model="gpt-5-codex-low", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(parts) == "streamed chat answer"
        assert fake.last.json["reasoning"]["effort"] == "low"

        fake.script(Reply(text="responses answer"))
        resp = await oa.responses.create(model="gpt-5-codex", input="hi", instructions="Use plain words.")
        assert resp.output_text == "responses answer"
        assert resp.usage is not None and resp.usage.total_tokens == 15
        assert fake.last.json["instructions"] == "Use plain words."

        fake.script(Reply(text="streamed responses answer", chunks=2))
        rstream = await oa.responses.create(model="gpt-5-high", input="hi", stream=True)
        text = [ev.delta async for ev in rstream if ev.type == "response.output_text.delta"]
        assert "".join(text) == "streamed responses answer"
        assert (fake.last.json["model"], fake.last.json["reasoning"]["effort"]) == ("gpt-5", "high")

        fake.script(Reply(text="claude answer"))
        an = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        msg = await an.messages.create(
            model="gpt-5-codex",
            max_tokens=300,
            system="Reply in one line.",
            messages=[{"role": "user", "content": "hi"}],
        )
        assert [b.text for b in msg.content if b.type == "text"] == ["claude answer"]
        assert fake.last.json["instructions"] == "Reply in one line."
        # The backend cannot count tokens: the count is estimated locally, the account is not asked.
        count = await an.messages.count_tokens(model="gpt-5-codex", messages=[{"role": "user", "content": "hi"}])
        assert count.input_tokens > 0

        fake.script(Reply(text="gemini answer"))
        ge = genai.Client(api_key=CLIENT_KEY, http_options=genai_types.HttpOptions(base_url=proxy.url))
        out = await ge.aio.models.generate_content(model="gpt-5-codex", contents="hi")
        assert out.text == "gemini answer"
    assert len(fake.requests) == 6
    for rec in fake.requests:
        assert rec.header("authorization") == f"Bearer {TOKEN_A}"
        assert rec.header("chatgpt-account-id") == ACCOUNT_A
    assert fake.validation_errors == []


async def test_an_expired_reference_file_is_refreshed_rewritten_and_used(
    tmp_path: Path, backend: tuple[FakeChatGPTBackend, str]
) -> None:
    fake, url = backend
    oauth = FakeOpenAIAuth(email="carol@example.com", account_id="acct-carol-new", refresh_tokens=["rt-carol"])
    fake.issuers.append((oauth, "acct-carol-new"))
    auths = tmp_path / "auths"
    path = write_auth(
        auths, "carol", access_token="at-carol-expired", account_id="acct-carol", expired=time.time() - 3600
    )
    async with oauth.serve() as oauth_url, run_proxy(proxy_config(auths, url, f"{oauth_url}/oauth/token")) as proxy:
        oa = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await oa.responses.create(model="gpt-5-codex", input="hi")
        assert resp.output_text
        second = await oa.responses.create(model="gpt-5-codex", input="again")
        assert second.output_text
    [refresh] = oauth.token_requests
    assert refresh.form is not None and refresh.form["refresh_token"] == "rt-carol"
    issued = oauth.issued[0]
    data = msgspec.json.decode(path.read_bytes())
    assert data["access_token"] == issued.access_token and data["refresh_token"] == issued.refresh_token
    assert data["account_id"] == "acct-carol-new"  # re-read from the new id_token
    assert data["email"] == "carol@example.com" and data["type"] == "codex"
    assert datetime.fromisoformat(data["expired"]).timestamp() > time.time() + 86400
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in auths.iterdir()] == [path.name]  # replaced in place, no temp files left behind
    accepted = [r for r in fake.requests if r.header("authorization") == f"Bearer {issued.access_token}"]
    assert len(accepted) == 2 and all(r.header("chatgpt-account-id") == "acct-carol-new" for r in accepted)
    assert fake.served == [("acct-carol-new", "gpt-5-codex")] * 2
    assert oauth.problems == [] and fake.validation_errors == []


async def test_a_usage_limit_moves_requests_to_the_other_account_for_the_stated_time(
    tmp_path: Path, backend: tuple[FakeChatGPTBackend, str]
) -> None:
    fake, url = backend
    auths = tmp_path / "auths"
    write_auth(auths, "alice", access_token=TOKEN_A, account_id=ACCOUNT_A)
    write_auth(auths, "bob", access_token=TOKEN_B, account_id=ACCOUNT_B)
    async with run_proxy(proxy_config(auths, url)) as proxy:
        oa = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)

        async def ask() -> str:
            fake.served.clear()
            r = await oa.chat.completions.create(model="gpt-5-codex", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content
            [(account, _)] = fake.served
            return account

        # Both accounts share the load.
        assert {await ask(), await ask()} == {ACCOUNT_A, ACCOUNT_B}
        fake.limit(ACCOUNT_A, 2)
        limited_at = time.monotonic()
        seen = [await ask() for _ in range(4)]
        assert seen == [ACCOUNT_B] * 4  # the limited answer itself failed over at once
        limited = [r for r in fake.requests if r.header("chatgpt-account-id") == ACCOUNT_A][-1]
        assert limited.header("authorization") == f"Bearer {TOKEN_A}"
        status = {s["label"]: s for s in proxy.container.pool().status()}
        cooling = status["alice@example.com"]["cooling"]["gpt-5-codex"]
        assert cooling["reason"] == "quota" and 0 < cooling["seconds"] <= 2
        await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - limited_at)))
        assert ACCOUNT_A in {await ask(), await ask()}  # back once the window reset
    assert fake.validation_errors == []


def test_the_backend_claims_are_what_openai_sends() -> None:
    claims = chatgpt_claims("acct-x", plan="pro")
    auth = claims["https://api.openai.com/auth"]
    assert auth["chatgpt_account_id"] == "acct-x" and auth["chatgpt_plan_type"] == "pro"
