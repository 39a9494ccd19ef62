"""cliproxy-qwen: reference auth files, the executor against the fake Qwen, refresh, round-robin and quota."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
import pytest

from cliproxy.config import load_settings
from cliproxy.http import HttpClients
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.refresh import CredentialHttp
from cliproxy.testing import Reply, ToolCall
from cliproxy.testing.proxy import run_proxy
from cliproxy_qwen import plugin
from cliproxy_qwen.auth import CLIENT_ID, QwenAuthenticator
from cliproxy_qwen.executor import (
    DEFAULT_BASE_URL,
    PLACEHOLDER_TOOL,
    QwenExecutor,
    base_url_for,
    until_quota_reset,
)
from cliproxy_qwen.models import CATALOG
from cliproxy_qwen.testing import FakeQwen, qwen_endpoints

CLIENT_KEY = "sk-client-qwen-test"
MODEL = "qwen3-coder-plus"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def reference_file(
    directory: Path, alias: str, *, access: str, refresh: str, resource_url: str, expires_in: float = 6 * 3600
) -> Path:
    """A ``qwen-<alias>.json`` exactly as CLIProxyAPI writes it (local time with offset, as Go does)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone()
    data = {
        "access_token": access,
        "refresh_token": refresh,
        "last_refresh": now.isoformat(timespec="seconds"),
        "resource_url": resource_url,
        "email": alias,
        "type": "qwen",
        "expired": (now + timedelta(seconds=expires_in)).isoformat(timespec="seconds"),
    }
    path = directory / f"qwen-{alias}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeQwen, str]]:
    server = FakeQwen()
    async with server.serve() as url:
        yield server, url


def config(tmp_path: Path, url: str, extra: str = "") -> str:
    return f"api-keys: [{CLIENT_KEY}]\nauth-dir: {tmp_path / 'auth'}\n{qwen_endpoints(url)}{extra}"


def proxy(tmp_path: Path, url: str, extra: str = "") -> Any:
    return run_proxy(config(tmp_path, url, extra), directory=tmp_path, entry_points=False, plugins=[plugin])


# ------------------------------------------------------------------------------------------------ units


def test_base_url_from_resource_url() -> None:
    assert base_url_for("portal.qwen.ai") == "https://portal.qwen.ai/v1"
    assert base_url_for("https://dashscope.aliyuncs.com/compatible-mode/v1/") == (
        "https://dashscope.aliyuncs.com/compatible-mode/v1"
    )
    assert base_url_for("http://127.0.0.1:9") == "http://127.0.0.1:9/v1"
    assert base_url_for("  ") == DEFAULT_BASE_URL


def test_quota_resets_at_midnight_in_beijing() -> None:
    at = datetime(2025, 10, 1, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    assert until_quota_reset(at) == 30 * 60


def test_a_reference_file_loads_unchanged(tmp_path: Path) -> None:
    path = reference_file(tmp_path, "me@example.com", access="at", refresh="rt", resource_url="portal.qwen.ai")
    raw = json.loads(path.read_text())
    cred = plugin.credential_from_file(path, raw)
    assert cred is not None
    assert (cred.id, cred.provider, cred.executor, cred.label) == (
        "qwen:qwen-me@example.com.json",
        "qwen",
        "qwen",
        "me@example.com",
    )
    assert cred.base_url == "https://portal.qwen.ai/v1"
    assert cred.metadata == raw and cred.source == str(path)
    assert plugin.credential_from_file(path, {**raw, "type": "iflow"}) is None


def test_catalog() -> None:
    ids = [m.id for m in CATALOG]
    assert {"qwen3-coder-plus", "qwen3-coder-flash", "qwen3-max", "qwen3-vl-plus", "vision-model"} <= set(ids)
    assert all(m.owned_by == "qwen" and m.type == "qwen" for m in CATALOG)


def test_the_authenticator_refreshes_three_hours_ahead() -> None:
    auth = QwenAuthenticator()
    assert auth.refresh_lead == timedelta(hours=3)
    assert "qwen" in auth.login_names


# ------------------------------------------------------------------------------------------------ executor


def executor(settings_text: str = "") -> QwenExecutor:
    return QwenExecutor(ExecutorServices(http=HttpClients(), settings=load_settings(None)))


def test_url_follows_resource_url_unless_api_url_is_set(tmp_path: Path) -> None:
    ex = executor()
    path = reference_file(tmp_path, "a", access="at", refresh="rt", resource_url="portal.qwen.ai")
    cred = plugin.credential_from_file(path, json.loads(path.read_text()))
    assert cred is not None
    call = UpstreamCall(model=MODEL, body=b"{}", stream=False)
    assert ex.url(call, cred) == "https://portal.qwen.ai/v1/chat/completions"
    cfg = tmp_path / "config.yaml"
    cfg.write_text("endpoints:\n  qwen:\n    api-url: https://gateway.example.com/qwen/v1/\n")
    ex.services.settings = load_settings(cfg)
    assert ex.url(call, cred) == "https://gateway.example.com/qwen/v1/chat/completions"


def test_streams_get_the_placeholder_tool_and_usage() -> None:
    ex = executor()
    cred = plugin.credential_from_data(None, {"access_token": "at", "email": "a"})
    body = msgspec.json.encode({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    sent = msgspec.json.decode(ex.prepare(UpstreamCall(MODEL, body, True), cred))
    assert sent["tools"] == [PLACEHOLDER_TOOL]
    assert sent["stream_options"] == {"include_usage": True}
    with_tools = msgspec.json.encode({"model": MODEL, "stream": True, "messages": [], "tools": [TOOL]})
    assert msgspec.json.decode(ex.prepare(UpstreamCall(MODEL, with_tools, True), cred))["tools"] == [TOOL]
    assert ex.prepare(UpstreamCall(MODEL, body, False), cred) == body  # non-stream: sent as is
    ex.stream_tool_workaround = False
    assert "tools" not in msgspec.json.decode(ex.prepare(UpstreamCall(MODEL, body, True), cred))


# ------------------------------------------------------------------------------------------------ end to end


async def test_openai_sdk_through_a_logged_in_account(tmp_path: Path, fake: tuple[FakeQwen, str]) -> None:
    up, url = fake
    up.seed_tokens("at-alice-0001", "rt-alice-0001")
    reference_file(tmp_path / "auth", "alice", access="at-alice-0001", refresh="rt-alice-0001", resource_url=url)
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        models = {m.id for m in (await client.models.list()).data}
        assert {m.id for m in CATALOG} <= models

        up.chat.script(Reply(text="hello from qwen"))
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "hello from qwen"
        last = up.chat_requests[-1]
        assert last.key == "at-alice-0001" and last.path == "/v1/chat/completions"
        assert last.header("x-dashscope-authtype") == "qwen-oauth"
        assert (last.header("user-agent") or "").startswith("QwenCode/")

        up.chat.script(Reply(text="one two three"))
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "one two three"
        sent = up.chat_requests[-1].json
        assert sent["tools"] == [PLACEHOLDER_TOOL] and sent["stream_options"]["include_usage"] is True

        # A tool round trip, streamed: the call comes back to the client, the result goes up again.
        up.chat.script(Reply(tool_calls=[ToolCall("call_1", "get_weather", {"city": "Hangzhou"})]))
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[TOOL], stream=True
        )
        calls = [tc async for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls[0].function is not None and calls[0].function.name == "get_weather"
        assert up.chat_requests[-1].json["tools"] == [TOOL]
        up.chat.script(Reply(text="Sunny."))
        resp = await client.chat.completions.create(
            model=MODEL,
            tools=[TOOL],
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 25C"},
            ],
        )
        assert resp.choices[0].message.content == "Sunny."
    assert up.problems == []


async def test_a_claude_client_is_translated(tmp_path: Path, fake: tuple[FakeQwen, str]) -> None:
    up, url = fake
    up.seed_tokens("at-claude-0001", "rt-claude-0001")
    reference_file(tmp_path / "auth", "c", access="at-claude-0001", refresh="rt-claude-0001", resource_url=url)
    async with proxy(tmp_path, url) as p:
        client = anthropic.AsyncAnthropic(base_url=p.url, api_key=CLIENT_KEY, max_retries=0)
        up.chat.script(Reply(text="translated"))
        async with client.messages.stream(
            model=MODEL, max_tokens=128, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
        assert text == "translated"
    assert up.chat_requests[-1].key == "at-claude-0001"
    assert up.chat_requests[-1].json["tools"] == [PLACEHOLDER_TOOL]
    assert up.problems == []


async def test_an_expired_token_is_refreshed_persisted_and_used(tmp_path: Path, fake: tuple[FakeQwen, str]) -> None:
    up, url = fake
    up.seed_tokens("at-old-0001", "rt-old-0001", expires_in=-10)
    path = reference_file(
        tmp_path / "auth", "bob", access="at-old-0001", refresh="rt-old-0001", resource_url=url, expires_in=-10
    )
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        up.chat.script(Reply(text="fresh"))
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "fresh"
    refreshes = [r for r in up.token_requests if (r.form or {}).get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0].form == {"grant_type": "refresh_token", "refresh_token": "rt-old-0001", "client_id": CLIENT_ID}
    [issued] = up.issued
    data = json.loads(path.read_text())
    assert data["access_token"] == issued.access_token and data["refresh_token"] == issued.refresh_token
    assert data["email"] == "bob" and data["type"] == "qwen" and data["resource_url"] == url
    assert datetime.fromisoformat(data["expired"].replace("Z", "+00:00")).timestamp() > time.time() + 3600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert up.chat_requests[-1].key == issued.access_token


async def test_refresh_through_the_token_url_override_keeps_identity(
    tmp_path: Path, fake: tuple[FakeQwen, str]
) -> None:
    up, url = fake
    up.seed_tokens("at-x", "rt-x")
    up.token_extra["resource_url"] = "portal.qwen.ai"
    cred = plugin.credential_from_data(None, {"access_token": "at-x", "refresh_token": "rt-x", "email": "x"})
    settings = load_settings(None)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(qwen_endpoints(url))
    settings = load_settings(cfg)
    base = HttpClients()
    try:
        fresh = await QwenAuthenticator().refresh(cred, CredentialHttp(base, None, settings))
    finally:
        await base.aclose()
    assert fresh.metadata["email"] == "x" and fresh.metadata["access_token"] == up.issued[0].access_token
    assert fresh.base_url == "https://portal.qwen.ai/v1"  # the account moved: follow resource_url


async def test_two_accounts_round_robin_and_quota_fails_over(tmp_path: Path, fake: tuple[FakeQwen, str]) -> None:
    up, url = fake
    for name in ("one", "two"):
        up.seed_tokens(f"at-{name}-0001", f"rt-{name}-0001")
        reference_file(tmp_path / "auth", name, access=f"at-{name}-0001", refresh=f"rt-{name}-0001", resource_url=url)
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        for _ in range(4):
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        keys = [r.key for r in up.chat_requests]
        assert sorted(keys) == ["at-one-0001", "at-one-0001", "at-two-0001", "at-two-0001"]
        assert keys[0] != keys[1] and keys[1] != keys[2]

        up.chat.reset()
        quota = Reply(status=403, error_code="insufficient_quota", error_message="Free allocated quota exceeded.")
        up.chat.script(quota, Reply(text="from the other account"))
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "from the other account"
        exhausted, other = (r.key for r in up.chat_requests)
        assert exhausted != other
        # The exhausted account rests until the quota resets: the next requests all go to the other one.
        for _ in range(2):
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert [r.key for r in up.chat_requests[2:]] == [other, other]


async def test_a_revoked_token_is_refreshed_once_after_a_401(tmp_path: Path, fake: tuple[FakeQwen, str]) -> None:
    up, url = fake
    up.seed_tokens("at-rev-0001", "rt-rev-0001")
    path = reference_file(tmp_path / "auth", "rev", access="at-rev-0001", refresh="rt-rev-0001", resource_url=url)
    async with proxy(tmp_path, url) as p:
        client = openai.AsyncOpenAI(base_url=p.v1, api_key=CLIENT_KEY, max_retries=0)
        up.expire("at-rev-0001")  # the server stops accepting the token before its announced expiry
        resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content
    assert [r.key for r in up.chat_requests] == ["at-rev-0001", up.issued[0].access_token]
    assert json.loads(path.read_text())["access_token"] == up.issued[0].access_token


def test_plugins_list_shows_the_plugin() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "cliproxy"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    row = next(r for r in json.loads(out.stdout) if r["name"] == "qwen")
    assert row["distribution"] == "cliproxy-qwen" and not row["error"]
    assert (row["executors"], row["providers"], row["authenticators"]) == (["qwen"], ["qwen"], ["qwen"])
