"""cliproxy-iflow: reference auth files, thinking switches, the executor against the fake iFlow, refresh."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
import pytest
from structlog.testing import capture_logs

from cliproxy.config import load_settings
from cliproxy.http import HttpClients
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.refresh import CredentialHttp
from cliproxy.testing import Reply, ToolCall
from cliproxy.testing.proxy import run_proxy
from cliproxy_iflow import plugin
from cliproxy_iflow.auth import CLIENT_ID, CLIENT_SECRET, IFlowAuthenticator
from cliproxy_iflow.executor import DEFAULT_BASE_URL, NOOP_TOOL, IFlowExecutor, apply_thinking
from cliproxy_iflow.models import CATALOG, thinking_switch
from cliproxy_iflow.testing import FakeIFlow, iflow_endpoints

CLIENT_KEY = "sk-client-iflow-test"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def reference_file(
    directory: Path, email: str, *, access: str, refresh: str, api_key: str, expires_in: float = 48 * 3600
) -> Path:
    """An ``iflow-<email>.json`` exactly as CLIProxyAPI writes it (local time with offset, as Go does)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone()
    data = {
        "access_token": access,
        "refresh_token": refresh,
        "last_refresh": now.isoformat(timespec="seconds"),
        "expired": (now + timedelta(seconds=expires_in)).isoformat(timespec="seconds"),
        "api_key": api_key,
        "email": email,
        "token_type": "bearer",
        "scope": "read write",
        "type": "iflow",
    }
    path = directory / f"iflow-{email}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeIFlow, str]]:
    server = FakeIFlow(email="ann@example.com")
    async with server.serve() as url:
        yield server, url


def proxy(tmp_path: Path, url: str) -> Any:
    config = f"api-keys: [{CLIENT_KEY}]\nauth-dir: {tmp_path / 'auth'}\n{iflow_endpoints(url)}"
    return run_proxy(config, directory=tmp_path, entry_points=False, plugins=[plugin])


def account(fake: FakeIFlow, tmp_path: Path, email: str = "ann@example.com", **kw: Any) -> Path:
    access, refresh = f"at-{email}", f"rt-{email}"
    fake.seed_tokens(access, refresh, expires_in=kw.pop("token_life", 48 * 3600))
    return reference_file(tmp_path / "auth", email, access=access, refresh=refresh, api_key=fake.api_key, **kw)


# ------------------------------------------------------------------------------------------------ units


def test_a_reference_file_loads_unchanged(tmp_path: Path) -> None:
    path = reference_file(tmp_path, "ann@example.com", access="at", refresh="rt", api_key="sk-iflow-abc")
    raw = json.loads(path.read_text())
    cred = plugin.credential_from_file(path, raw)
    assert cred is not None
    assert (cred.id, cred.provider, cred.executor, cred.label, cred.api_key) == (
        "iflow:iflow-ann@example.com.json",
        "iflow",
        "iflow",
        "ann@example.com",
        "sk-iflow-abc",
    )
    assert cred.metadata == raw and cred.base_url is None
    assert plugin.credential_from_file(path, {**raw, "type": "qwen"}) is None
    ex = IFlowExecutor(ExecutorServices(http=HttpClients(), settings=load_settings(None)))
    call = UpstreamCall(model="kimi-k2", body=b"{}", stream=False)
    assert ex.url(call, cred) == f"{DEFAULT_BASE_URL}/chat/completions" == "https://apis.iflow.cn/v1/chat/completions"
    assert ex.headers(call, cred)["Authorization"] == "Bearer sk-iflow-abc"
    assert ex.headers(call, cred)["User-Agent"] == "iFlow-Cli"


def test_catalog() -> None:
    ids = {m.id for m in CATALOG}
    assert {"tstars2.0", "deepseek-v3.2", "deepseek-v3.1", "deepseek-r1", "kimi-k2", "glm-4.6", "qwen3-max"} <= ids
    assert all(m.owned_by == "iflow" for m in CATALOG)
    assert {m.id for m in CATALOG if m.thinking} == {
        "glm-4.6",
        "deepseek-v3.2",
        "deepseek-v3.1",
        "qwen3-max-preview",
        "minimax-m2",
    }


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("glm-4.6", "high", {"chat_template_kwargs": {"enable_thinking": True, "clear_thinking": False}}),
        ("glm-4.6", "none", {"chat_template_kwargs": {"enable_thinking": False}}),
        ("deepseek-v3.1", "low", {"chat_template_kwargs": {"enable_thinking": True}}),
        ("deepseek-v3.2", "none", {"chat_template_kwargs": {"enable_thinking": False}}),
        ("qwen3-max-preview", "medium", {"chat_template_kwargs": {"enable_thinking": True}}),
        ("minimax-m2", "high", {"reasoning_split": True}),
        ("kimi-k2", "high", {}),
        ("deepseek-r1", "none", {}),
    ],
)
def test_thinking_switches(model: str, effort: str, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": model, "reasoning_effort": effort}
    assert apply_thinking(body, model)
    assert body == {"model": model, **expected}


def test_thinking_switch_names() -> None:
    assert thinking_switch("GLM-4.6") == "glm" and thinking_switch("tstars2.0") is None


def test_prepare_only_touches_what_it_must() -> None:
    ex = IFlowExecutor(ExecutorServices(http=HttpClients(), settings=load_settings(None)))
    cred = plugin.credential_from_data(None, {"api_key": "k", "email": "e"})
    plain = msgspec.json.encode({"model": "kimi-k2", "stream": True, "messages": []})
    assert ex.prepare(UpstreamCall("kimi-k2", plain, True), cred) is plain
    empty = msgspec.json.encode({"model": "kimi-k2", "stream": True, "messages": [], "tools": []})
    assert msgspec.json.decode(ex.prepare(UpstreamCall("kimi-k2", empty, True), cred))["tools"] == [NOOP_TOOL]
    assert ex.prepare(UpstreamCall("kimi-k2", empty, False), cred) is empty
    think = msgspec.json.encode({"model": "glm-4.6", "messages": [], "reasoning_effort": "medium"})
    sent = msgspec.json.decode(ex.prepare(UpstreamCall("glm-4.6", think, False), cred))
    assert sent["chat_template_kwargs"] == {"enable_thinking": True, "clear_thinking": False}


# ------------------------------------------------------------------------------------------------ end to end


async def test_openai_sdk_with_kimi_k2_and_tools(tmp_path: Path, fake: tuple[FakeIFlow, str]) -> None:
    up, url = fake
    account(up, tmp_path)
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        assert {m.id for m in CATALOG} <= {m.id for m in (await client.models.list()).data}
        up.chat.script(Reply(text="hello from kimi"))
        resp = await client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "hello from kimi"
        assert up.chat_requests[-1].key == up.api_key
        assert up.chat_requests[-1].header("user-agent") == "iFlow-Cli"

        up.chat.script(Reply(tool_calls=[ToolCall("call_7", "get_weather", {"city": "Beijing"})]))
        stream = await client.chat.completions.create(
            model="kimi-k2", messages=[{"role": "user", "content": "weather?"}], tools=[TOOL], stream=True
        )
        calls = [tc async for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls[0].function is not None and calls[0].function.name == "get_weather"
        assert up.chat_requests[-1].json["tools"] == [TOOL]

        up.chat.script(Reply(text="thinking on", reasoning="let me think"))
        resp = await client.chat.completions.create(
            model="glm-4.6", messages=[{"role": "user", "content": "hi"}], reasoning_effort="high"
        )
        assert resp.choices[0].message.content == "thinking on"
        sent = up.chat_requests[-1].json
        assert "reasoning_effort" not in sent
        assert sent["chat_template_kwargs"] == {"enable_thinking": True, "clear_thinking": False}
    assert up.problems == []


async def test_a_claude_client_with_thinking_on_glm(tmp_path: Path, fake: tuple[FakeIFlow, str]) -> None:
    up, url = fake
    account(up, tmp_path)
    async with proxy(tmp_path, url) as p:
        client = anthropic.AsyncAnthropic(base_url=p.url, api_key=CLIENT_KEY, max_retries=0)
        up.chat.script(Reply(text="pondered", reasoning="hmm"))
        msg = await client.messages.create(
            model="glm-4.6",
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 2048},
            messages=[{"role": "user", "content": "think"}],
        )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert up.chat_requests[-1].json["chat_template_kwargs"]["enable_thinking"] is True
    assert up.problems == []


async def test_an_expiring_token_is_refreshed_with_a_new_api_key(tmp_path: Path, fake: tuple[FakeIFlow, str]) -> None:
    up, url = fake
    old_key = up.api_key
    path = account(up, tmp_path, expires_in=3600)  # inside the 24 h lead
    new_key = up.rotate_api_key()
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content
    [refresh] = [r for r in up.token_requests if (r.form or {}).get("grant_type") == "refresh_token"]
    assert refresh.form is not None and refresh.form["client_secret"] == CLIENT_SECRET
    assert refresh.form["client_id"] == CLIENT_ID and refresh.header("authorization", "").startswith("Basic ")
    [issued] = up.issued
    data = json.loads(path.read_text())
    assert (data["access_token"], data["refresh_token"]) == (issued.access_token, issued.refresh_token)
    assert data["api_key"] == new_key != old_key
    assert data["email"] == "ann@example.com" and data["type"] == "iflow"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The old key was retired by iFlow: every chat call went out with the new one.
    assert [r.key for r in up.chat_requests][-1] == new_key
    assert up.problems == []


async def test_refresh_keeps_new_tokens_when_the_key_lookup_fails(tmp_path: Path, fake: tuple[FakeIFlow, str]) -> None:
    up, url = fake
    up.seed_tokens("at-1", "rt-1")
    cred = plugin.credential_from_data(
        None, {"access_token": "at-1", "refresh_token": "rt-1", "api_key": "sk-old", "email": "ann@example.com"}
    )
    up.api_key = ""  # getUserInfo answers without a key
    cfg = tmp_path / "c.yaml"
    cfg.write_text(iflow_endpoints(url))
    base = HttpClients()
    try:
        with capture_logs() as logs:
            fresh = await IFlowAuthenticator().refresh(cred, CredentialHttp(base, None, load_settings(cfg)))
    finally:
        await base.aclose()
    assert fresh.metadata["access_token"] == up.issued[0].access_token
    assert fresh.api_key == fresh.metadata["api_key"] == "sk-old"
    assert any(e["event"].startswith("iFlow API key not renewed") for e in logs)
    assert IFlowAuthenticator().refresh_lead == timedelta(hours=24)


async def test_two_accounts_round_robin_and_a_429_fails_over(tmp_path: Path, fake: tuple[FakeIFlow, str]) -> None:
    up, url = fake
    account(up, tmp_path, "one@example.com")
    first_key = up.api_key
    second_key = up.rotate_api_key()
    up.api_keys.add(first_key)  # both accounts' keys are valid
    account(up, tmp_path, "two@example.com")
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        for _ in range(4):
            await client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
        assert sorted(r.key or "" for r in up.chat_requests) == sorted([first_key, first_key, second_key, second_key])
        up.chat.reset()
        up.chat.script(Reply(status=429, retry_after=60), Reply(text="other account"))
        resp = await client.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "other account"
        limited, other = (r.key for r in up.chat_requests)
        assert limited != other


def test_plugins_list_shows_the_plugin() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "cliproxy"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    row = next(r for r in json.loads(out.stdout) if r["name"] == "iflow")
    assert row["distribution"] == "cliproxy-iflow" and not row["error"]
    assert (row["executors"], row["providers"], row["authenticators"]) == (["iflow"], ["iflow"], ["iflow"])
