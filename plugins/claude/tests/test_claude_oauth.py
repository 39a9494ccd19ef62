"""Claude Code subscription credentials: reference auth files, the OAuth upstream, refresh, and failover.

The upstream is ``FakeClaudeSubscription`` (Bearer only, the oauth beta required, Claude Code's identity line
first in the system prompt, expired tokens refused) and the token endpoint ``FakeAnthropicOAuth``; cliproxy
finds them through ``endpoints.claude.api-url``/``token-url``. Clients are the real ``anthropic`` and
``openai`` SDKs.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest

from cliproxy.config import load_settings
from cliproxy.credentials import Credential
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginError
from cliproxy.protocols import ExecutorServices, UpstreamCall
from cliproxy.refresh import CredentialHttp
from cliproxy.testing import Reply, serve_on_loopback
from cliproxy.testing.proxy import run_proxy
from cliproxy_claude import claude_code
from cliproxy_claude.executor import ClaudeExecutor, is_oauth
from cliproxy_claude.oauth import CLIENT_ID, ClaudeAuthenticator
from cliproxy_claude.plugin import credential_from_file
from cliproxy_claude.ratelimit import ratelimit_reset
from cliproxy_claude.testing import FakeAnthropicOAuth, FakeClaudeSubscription

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

MODEL = "claude-sonnet-4-5-20250929"
CLIENT_KEY = "sk-client-claude-oauth"
IDENTITY = claude_code.IDENTITY


def local_iso(ts: float) -> str:
    """How CLIProxyAPI writes times: RFC 3339 in the server's zone, with an offset."""
    return datetime.fromtimestamp(ts).astimezone().isoformat()


def reference_file(directory: Path, email: str, access: str, refresh: str, *, expires: float) -> Path:
    """A ``claude-<email>.json`` exactly as CLIProxyAPI's ``--claude-login`` writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"claude-{email}.json"
    data = {
        "id_token": "",
        "access_token": access,
        "refresh_token": refresh,
        "last_refresh": local_iso(time.time() - 3600),
        "email": email,
        "type": "claude",
        "expired": local_iso(expires),
    }
    path.write_text(json.dumps(data))
    return path


@dataclass
class Upstream:
    oauth: FakeAnthropicOAuth
    oauth_url: str
    api: FakeClaudeSubscription
    api_url: str

    def config(self, auth_dir: Path) -> str:
        return (
            f"api-keys: [{CLIENT_KEY}]\n"
            f"auth-dir: {auth_dir}\n"
            "endpoints:\n"
            "  claude:\n"
            f"    token-url: {self.oauth_url}/v1/oauth/token\n"
            f"    api-url: {self.api_url}\n"
        )


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    oauth = FakeAnthropicOAuth(email="ada@example.com")
    api = FakeClaudeSubscription(oauth)
    async with serve_on_loopback(oauth) as oauth_url, serve_on_loopback(api) as api_url:
        yield Upstream(oauth, oauth_url, api, api_url)


def tokens_seen(api: FakeClaudeSubscription) -> list[str | None]:
    return [r.key for r in api.requests if r.path.startswith("/v1/messages")]


# ----------------------------------------------------------------------------------------- auth files


def test_reference_file_loads_unchanged(tmp_path: Path) -> None:
    path = reference_file(tmp_path, "ada@example.com", "sk-ant-oat01-a", "sk-ant-ort01-a", expires=time.time() + 9e3)
    data = json.loads(path.read_text())
    cred = credential_from_file(path, data)
    assert cred is not None and is_oauth(cred)
    assert (cred.provider, cred.executor, cred.label, cred.id) == (
        "claude",
        "claude",
        "ada@example.com",
        f"claude:{path.name}",
    )
    assert cred.metadata == data and cred.source == str(path) and cred.api_key is None
    assert credential_from_file(path, {**data, "type": "codex"}) is None
    with_proxy = credential_from_file(path, {**data, "proxy_url": "socks5://127.0.0.1:1080", "label": "work"})
    assert with_proxy is not None and with_proxy.proxy_url == "socks5://127.0.0.1:1080" and with_proxy.label == "work"


def test_oauth_classification_is_one_rule() -> None:
    assert is_oauth(Credential(id="a", provider="claude", executor="claude", metadata={"access_token": "t"}))
    assert is_oauth(Credential(id="b", provider="claude", executor="claude", api_key="sk-ant-oat01-x"))
    assert not is_oauth(Credential(id="c", provider="claude", executor="claude", api_key="sk-ant-api03-x"))
    assert not is_oauth(Credential(id="d", provider="claude", executor="claude"))


# ----------------------------------------------------------------------------------------- executor unit


def oauth_cred(token: str = "sk-ant-oat01-unit") -> Credential:
    return Credential(id="claude:x.json", provider="claude", executor="claude", metadata={"access_token": token})


def call(
    body: dict[str, Any], *, client: str = "openai", headers: dict[str, str] | None = None, **kw: Any
) -> UpstreamCall:
    data = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **body}
    return UpstreamCall(MODEL, msgspec.json.encode(data), kw.pop("stream", False), client_format=client,
                        client_headers=headers or {}, **kw)  # fmt: skip


def test_headers_are_bearer_with_the_oauth_beta_and_claude_codes_fingerprint() -> None:
    ex = ClaudeExecutor(HttpClients())
    h = ex.headers(call({}, stream=True), oauth_cred())
    assert h["Authorization"] == "Bearer sk-ant-oat01-unit" and "x-api-key" not in {k.lower() for k in h}
    assert h["Anthropic-Beta"] == ",".join(
        [claude_code.CLAUDE_CODE_BETA, claude_code.OAUTH_BETA, *claude_code.DEFAULT_BETAS]
    )
    assert h["User-Agent"] == f"claude-cli/{claude_code.CLAUDE_CODE_VERSION} (external, cli)"
    assert h["X-App"] == "cli" and h["Anthropic-Dangerous-Direct-Browser-Access"] == "true"
    assert h["X-Stainless-Lang"] == "js" and h["X-Stainless-Helper-Method"] == "stream"
    assert h["Anthropic-Version"] == "2023-06-01" and h["Accept"] == "text/event-stream"


def test_client_betas_are_merged_without_duplicates() -> None:
    ex = ClaudeExecutor(HttpClients())
    betas = "prompt-caching-2024-07-31, oauth-2025-04-20,context-1m-2025-08-07"
    h = ex.headers(call({}, client="claude", headers={"anthropic-beta": betas}), oauth_cred())
    assert h["Anthropic-Beta"].split(",") == [
        "prompt-caching-2024-07-31",
        "oauth-2025-04-20",
        "context-1m-2025-08-07",
        "claude-code-20250219",
    ]


def test_claude_code_keeps_its_own_fingerprint() -> None:
    ex = ClaudeExecutor(HttpClients())
    client = {
        "user-agent": "claude-cli/2.1.197 (external, sdk-cli)",
        "x-app": "cli",
        "x-stainless-os": "MacOS",
        "x-stainless-arch": "arm64",
        "x-claude-code-session-id": "4a9e-session",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    }
    h = ex.headers(call({}, client="claude", headers=client), oauth_cred())
    assert h["User-Agent"] == "claude-cli/2.1.197 (external, sdk-cli)"
    assert (h["X-Stainless-OS"], h["X-Stainless-Arch"]) == ("MacOS", "arm64")
    assert h["X-Claude-Code-Session-Id"] == "4a9e-session"
    assert h["Anthropic-Beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20"
    # An SDK that merely claims nothing of the sort gets Claude Code's defaults, not its own User-Agent.
    sdk = ex.headers(call({}, client="claude", headers={"user-agent": "Anthropic/Python 0.60.0"}), oauth_cred())
    assert sdk["User-Agent"].startswith("claude-cli/")


def system_of(ex: ClaudeExecutor, c: UpstreamCall, cred: Credential) -> Any:
    return msgspec.json.decode(ex.prepare(c, cred))["system"]


def test_identity_is_prepended_and_the_clients_prompt_kept() -> None:
    ex = ClaudeExecutor(HttpClients())
    cred = oauth_cred()
    first = {"type": "text", "text": IDENTITY, "cache_control": {"type": "ephemeral"}}
    assert system_of(ex, call({}), cred) == [first]
    assert system_of(ex, call({"system": "Answer in French."}), cred) == [
        first,
        {"type": "text", "text": "Answer in French."},
    ]
    blocks = [
        {"type": "text", "text": "Rule one.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Rule two."},
    ]
    assert system_of(ex, call({"system": blocks}), cred) == [first, *blocks]
    # Already four cache breakpoints: the identity block adds none (Anthropic allows four).
    many = [{"type": "text", "text": f"r{i}", "cache_control": {"type": "ephemeral"}} for i in range(4)]
    assert system_of(ex, call({"system": many}), cred) == [{"type": "text", "text": IDENTITY}, *many]
    # API keys: the body goes out byte for byte.
    key = Credential(id="k", provider="claude", executor="claude", api_key="sk-ant-api03-k")
    raw = call({"system": "Answer in French."})
    assert ex.prepare(raw, key) is raw.body


def test_claude_codes_own_identity_is_not_duplicated() -> None:
    ex = ClaudeExecutor(HttpClients())
    for identity in (
        IDENTITY,
        "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
        "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
    ):
        system = [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": identity, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "The long Claude Code prompt ...", "cache_control": {"type": "ephemeral"}},
        ]
        c = call({"system": system}, client="claude")
        assert ex.prepare(c, oauth_cred()) is c.body  # not even decoded
    # The identity somewhere later does not count: Anthropic wants it first.
    late = call({"system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": IDENTITY}]})
    assert system_of(ex, late, oauth_cred())[0]["text"] == IDENTITY


def test_count_tokens_gets_the_identity_and_loses_create_only_fields() -> None:
    ex = ClaudeExecutor(HttpClients())
    c = call({"system": "Be brief.", "stream": True, "temperature": 0.2}, action="count_tokens")
    sent = msgspec.json.decode(ex.prepare(c, oauth_cred()))
    assert sent["system"][0]["text"] == IDENTITY and "max_tokens" not in sent and "temperature" not in sent


async def test_api_url_comes_from_the_live_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("endpoints:\n  claude:\n    api-url: http://127.0.0.1:9/anthropic/\n")
    http = HttpClients()
    ex = ClaudeExecutor(http, ExecutorServices(http, load_settings(cfg)))
    assert ex.url(call({}), oauth_cred()) == "http://127.0.0.1:9/anthropic/v1/messages?beta=true"
    key = Credential(id="k", provider="claude", executor="claude", api_key="sk-ant-api03-k")
    assert ex.url(call({}), key) == "https://api.anthropic.com/v1/messages?beta=true"  # API keys keep base-url
    await http.aclose()


def test_ratelimit_headers_give_the_cooldown() -> None:
    now = 1_750_000_000.0
    unified = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": str(int(now + 3600)),
        "anthropic-ratelimit-unified-5h-status": "rejected",
        "anthropic-ratelimit-unified-5h-reset": str(int(now + 3600)),
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-reset": str(int(now + 86400 * 3)),
    }
    assert ratelimit_reset(unified, now) == 3600
    iso = datetime.fromtimestamp(now + 42, UTC).isoformat().replace("+00:00", "Z")
    later = datetime.fromtimestamp(now + 50, UTC).isoformat().replace("+00:00", "Z")
    api = {
        "Anthropic-RateLimit-Requests-Remaining": "12",
        "Anthropic-RateLimit-Requests-Reset": iso,
        "Anthropic-RateLimit-Tokens-Remaining": "0",
        "Anthropic-RateLimit-Tokens-Reset": later,
    }
    assert ratelimit_reset(api, now) == 50  # the exhausted window decides
    assert ratelimit_reset({"anthropic-ratelimit-requests-reset": iso}, now) == 42
    assert ratelimit_reset({"content-type": "application/json"}, now) is None
    ex = ClaudeExecutor(HttpClients())
    err = ex.error(429, {**unified, "anthropic-ratelimit-unified-reset": str(int(time.time() + 900))}, b"{}")
    assert err.retry_after is not None and 890 < err.retry_after <= 900
    assert ex.error(429, {"retry-after": "7", **unified}, b"{}").retry_after == 7  # Retry-After wins


# ----------------------------------------------------------------------------------------- refresh


async def test_refresh_rotates_tokens_and_never_blanks_the_email(tmp_path: Path, upstream: Upstream) -> None:
    upstream.oauth.add_refresh_token("sk-ant-ort01-old")
    path = reference_file(tmp_path, "ada@example.com", "sk-ant-oat01-old", "sk-ant-ort01-old", expires=time.time() - 60)
    cred = credential_from_file(path, json.loads(path.read_text()))
    assert cred is not None
    upstream.oauth.token_extra = {}  # this answer names no account
    cfg = tmp_path / "config.yaml"
    cfg.write_text(upstream.config(tmp_path / "auth"))
    base = HttpClients()
    try:
        fresh = await ClaudeAuthenticator().refresh(cred, CredentialHttp(base, None, load_settings(cfg)))
    finally:
        await base.aclose()
    [req] = upstream.oauth.token_requests
    assert req.json == {"grant_type": "refresh_token", "refresh_token": "sk-ant-ort01-old", "client_id": CLIENT_ID}
    issued = upstream.oauth.issued[0]
    assert fresh.metadata["access_token"] == issued.access_token
    assert fresh.metadata["refresh_token"] == issued.refresh_token != "sk-ant-ort01-old"
    assert fresh.metadata["email"] == "ada@example.com" and fresh.label == "ada@example.com"
    assert fresh.metadata["type"] == "claude" and fresh.metadata["id_token"] == ""
    assert datetime.fromisoformat(fresh.metadata["expired"]) > datetime.now(UTC) + timedelta(hours=7)


async def test_a_refused_refresh_is_a_one_line_error(tmp_path: Path, upstream: Upstream) -> None:
    cred = Credential(id="c", provider="claude", executor="claude", metadata={"refresh_token": "unknown-rt"})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(upstream.config(tmp_path / "auth"))
    base = HttpClients()
    try:
        http = CredentialHttp(base, None, load_settings(cfg))
        with pytest.raises(LoginError, match="token refresh failed with status 400: invalid_grant"):
            await ClaudeAuthenticator().refresh(cred, http)
        with pytest.raises(LoginError, match="no refresh_token; run 'cliproxy login claude' again"):
            await ClaudeAuthenticator().refresh(msgspec.structs.replace(cred, metadata={}), http)
    finally:
        await base.aclose()


async def test_expired_reference_file_is_refreshed_rewritten_and_used(tmp_path: Path, upstream: Upstream) -> None:
    auth = tmp_path / "auth"
    upstream.oauth.add_refresh_token("sk-ant-ort01-expired")
    upstream.oauth.grant("sk-ant-oat01-expired", expires_in=-1)  # known upstream, but expired
    path = reference_file(
        auth, "ada@example.com", "sk-ant-oat01-expired", "sk-ant-ort01-expired", expires=time.time() - 120
    )
    upstream.api.script(Reply(text="served with a fresh token"))
    async with run_proxy(upstream.config(auth), directory=tmp_path) as proxy:
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        msg = await client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "served with a fresh token"
    [issued] = upstream.oauth.issued  # one refresh, however the request and the scheduler raced
    assert tokens_seen(upstream.api)[-1] == issued.access_token
    data = json.loads(path.read_text())
    assert data["access_token"] == issued.access_token and data["refresh_token"] == issued.refresh_token
    assert data["email"] == "ada@example.com" and data["type"] == "claude"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in auth.iterdir()] == [path.name]  # replaced atomically: no temp files left


# ----------------------------------------------------------------------------------------- end to end


def valid_accounts(up: Upstream, auth: Path, *names: str) -> list[str]:
    tokens = []
    for name in names:
        token = f"sk-ant-oat01-{name}"
        up.oauth.grant(token)
        reference_file(auth, f"{name}@example.com", token, f"sk-ant-ort01-{name}", expires=time.time() + 8 * 3600)
        tokens.append(token)
    return tokens


async def test_anthropic_sdk_reaches_the_subscription_upstream(tmp_path: Path, upstream: Upstream) -> None:
    [token] = valid_accounts(upstream, tmp_path / "auth", "ada")
    up = upstream.api
    up.script(Reply(text="non-streamed"), Reply(text="streamed over oauth", chunks=3))
    async with run_proxy(upstream.config(tmp_path / "auth"), directory=tmp_path) as proxy:
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)
        msg = await client.messages.create(
            model=MODEL,
            max_tokens=128,
            system="Answer like a pirate.",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        )
        assert msg.content[0].type == "text" and msg.content[0].text == "non-streamed"
        rec = up.last
        assert rec.header("authorization") == f"Bearer {token}" and rec.header("x-api-key") is None
        assert rec.header("anthropic-beta") == "prompt-caching-2024-07-31,claude-code-20250219,oauth-2025-04-20"
        assert rec.header("user-agent", "").startswith("claude-cli/") and rec.header("x-app") == "cli"
        assert [b["text"] for b in rec.json["system"]] == [IDENTITY, "Answer like a pirate."]
        assert rec.path == "/v1/messages" and rec.query == {"beta": "true"}
        async with client.messages.stream(
            model=MODEL, max_tokens=128, messages=[{"role": "user", "content": "stream"}]
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        assert text == "streamed over oauth" and final.usage.output_tokens == 5
        count = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert count.input_tokens == 10
        assert up.last.path == "/v1/messages/count_tokens" and up.last.key == token
    assert up.validation_errors == [] and up.refusals == []
    assert set(tokens_seen(up)) == {token}


async def test_openai_sdk_reaches_the_subscription_upstream(tmp_path: Path, upstream: Upstream) -> None:
    [token] = valid_accounts(upstream, tmp_path / "auth", "ada")
    up = upstream.api
    up.script(Reply(text="bonjour", reasoning="thinking it over"), Reply(text="streamed answer", chunks=2))
    async with run_proxy(upstream.config(tmp_path / "auth"), directory=tmp_path) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        resp = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "Speak French."}, {"role": "user", "content": "hello"}],
            reasoning_effort="high",
            max_tokens=30000,
        )
        assert resp.choices[0].message.content == "bonjour"
        assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (10, 5)
        rec = up.last
        assert rec.header("authorization") == f"Bearer {token}" and rec.header("x-api-key") is None
        assert "oauth-2025-04-20" in (rec.header("anthropic-beta") or "").split(",")
        assert [b["text"] for b in rec.json["system"]] == [IDENTITY, "Speak French."]
        assert rec.json["thinking"] == {"type": "enabled", "budget_tokens": 24576}
        assert rec.json["max_tokens"] > rec.json["thinking"]["budget_tokens"]
        chunks = [
            c
            async for c in await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "stream please"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        ]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = [c.usage for c in chunks if c.usage is not None]
        assert text == "streamed answer" and usage and usage[-1].total_tokens == 15
    assert up.validation_errors == [] and up.refusals == []


async def test_two_accounts_round_robin_and_a_429_fails_over(tmp_path: Path, upstream: Upstream) -> None:
    auth = tmp_path / "auth"
    ada, bob = valid_accounts(upstream, auth, "ada", "bob")
    up = upstream.api
    async with run_proxy(upstream.config(auth), directory=tmp_path) as proxy:
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=CLIENT_KEY, max_retries=0)

        async def ask() -> str:
            msg = await client.messages.create(model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}])
            block = msg.content[0]
            return block.text if block.type == "text" else ""

        for _ in range(4):
            await ask()
        assert sorted(tokens_seen(up)) == sorted([ada, bob] * 2)

        # Ada's 5-hour window runs out: 429 with the subscription's rate-limit headers, no Retry-After.
        reset = int(time.time()) + 1800
        up.key_behaviour[ada] = Reply(
            status=429,
            error_type="rate_limit_error",
            error_message="This request would exceed your account's rate limit. Please try again later.",
            headers={
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": str(reset),
                "anthropic-ratelimit-unified-representative-claim": "five_hour",
            },
        )
        up.reset()
        for _ in range(4):
            assert (await ask()).startswith("echo:")
        seen = tokens_seen(up)
        assert seen.count(ada) == 1 and seen.count(bob) == 4  # one 429, then Bob alone
        status = {s["label"]: s for s in proxy.container.pool().status()}
        cooling = status["ada@example.com"]["cooling"][MODEL]
        assert cooling["reason"] == "quota" and 1700 < cooling["seconds"] <= 1800
        assert status["bob@example.com"]["state"] == "available"


async def test_overloaded_529_fails_over_to_the_next_account(tmp_path: Path, upstream: Upstream) -> None:
    auth = tmp_path / "auth"
    ada, bob = valid_accounts(upstream, auth, "ada", "bob")
    up = upstream.api
    up.key_behaviour[ada] = Reply(status=529, error_message="Overloaded")
    up.key_behaviour[bob] = Reply(text="bob answers")
    async with run_proxy(upstream.config(auth), directory=tmp_path) as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.v1, api_key=CLIENT_KEY, max_retries=0)
        for _ in range(2):
            resp = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
            assert resp.choices[0].message.content == "bob answers"
        status = {s["label"]: s for s in proxy.container.pool().status()}
        assert status["ada@example.com"]["cooling"][MODEL]["reason"] == "transient"
    assert tokens_seen(up).count(ada) == 1


async def test_a_claude_code_request_passes_with_its_prompt_untouched(tmp_path: Path, upstream: Upstream) -> None:
    """What Claude Code sends (billing line, identity, its prompt; its own headers) arrives as it was sent."""
    [token] = valid_accounts(upstream, tmp_path / "auth", "ada")
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=sdk-cli;"},
        {
            "type": "text",
            "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": "You are an interactive CLI tool ...", "cache_control": {"type": "ephemeral"}},
    ]
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "system": system,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    headers = {
        "Authorization": f"Bearer {CLIENT_KEY}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        "user-agent": "claude-cli/2.1.197 (external, sdk-cli)",
        "x-app": "cli",
        "x-claude-code-session-id": "0f5e-sess",
        "x-stainless-os": "Linux",
    }
    async with (
        run_proxy(upstream.config(tmp_path / "auth"), directory=tmp_path) as proxy,
        httpx.AsyncClient(timeout=30) as http,
    ):
        resp = await http.post(f"{proxy.url}/v1/messages?beta=true", json=body, headers=headers)
    assert resp.status_code == 200 and "message_stop" in resp.text
    rec = upstream.api.last
    assert rec.json["system"] == system and rec.key == token
    assert rec.header("anthropic-beta") == "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert rec.header("user-agent") == "claude-cli/2.1.197 (external, sdk-cli)"
    assert rec.header("x-claude-code-session-id") == "0f5e-sess"


async def test_the_subscription_fake_refuses_what_anthropic_refuses(upstream: Upstream) -> None:
    upstream.oauth.grant("sk-ant-oat01-ok")
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    good = {
        "authorization": "Bearer sk-ant-oat01-ok",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "oauth-2025-04-20",
    }
    url = f"{upstream.api_url}/v1/messages?beta=true"
    async with httpx.AsyncClient() as http:
        as_key = await http.post(url, json=body, headers={**good, "authorization": "", "x-api-key": "sk-ant-oat01-ok"})
        no_beta = await http.post(url, json=body, headers={**good, "anthropic-beta": "claude-code-20250219"})
        expired = await http.post(url, json=body, headers={**good, "authorization": "Bearer sk-ant-oat01-unknown"})
        no_identity = await http.post(url, json={**body, "system": "Be brief."}, headers=good)
        ok = await http.post(url, json={**body, "system": [{"type": "text", "text": IDENTITY}]}, headers=good)
    assert (as_key.status_code, no_beta.status_code, expired.status_code) == (401, 401, 401)
    assert "OAuth authentication is currently not supported" in no_beta.text
    assert no_identity.status_code == 400 and "only authorized for use with Claude Code" in no_identity.text
    assert ok.status_code == 200


async def test_an_answer_without_expires_in_is_not_due_again_at_once(tmp_path: Path, upstream: Upstream) -> None:
    upstream.oauth.add_refresh_token("sk-ant-ort01-x")
    upstream.oauth.token_extra = {"expires_in": None}
    cred = Credential(id="c", provider="claude", executor="claude", metadata={"refresh_token": "sk-ant-ort01-x"})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(upstream.config(tmp_path / "auth"))
    base = HttpClients()
    try:
        fresh = await ClaudeAuthenticator().refresh(cred, CredentialHttp(base, None, load_settings(cfg)))
    finally:
        await base.aclose()
    lead = ClaudeAuthenticator.refresh_lead
    assert lead is not None
    assert datetime.fromisoformat(fresh.metadata["expired"]) > datetime.now(UTC) + lead + timedelta(hours=3)
