"""ChatGPT login, auth files and token refresh against the fake OpenAI OAuth server, over real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from cliproxy.config import load_settings
from cliproxy.credentials import Credential
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginContext, LoginError, decode_jwt_claims
from cliproxy.oauth.driver import run_login, save_results
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import LoginOptions
from cliproxy.refresh import CredentialHttp
from cliproxy.testing import serve_on_loopback
from cliproxy.testing.browser import follow_login_url
from cliproxy_codex import plugin
from cliproxy_codex.auth import CLIENT_ID, CodexAuthenticator, CodexLogin, account_claims
from cliproxy_codex.testing import FakeOpenAIAuth, chatgpt_claims

BIN = str(Path(sys.executable).parent / "cliproxy")
EMAIL = "ann@example.com"
ACCOUNT = "acct-ann-0001"
REFERENCE_KEYS = ["id_token", "access_token", "refresh_token", "account_id", "last_refresh", "email", "type", "expired"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def settings_for(tmp_path: Path, base: str) -> Any:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(endpoints_yaml(base))
    return load_settings(cfg)


def endpoints_yaml(base: str, api: str | None = None) -> str:
    text = f"endpoints:\n  codex:\n    auth-url: {base}/oauth/authorize\n    token-url: {base}/oauth/token\n"
    if api:
        text += f"    api-url: {api}\n"
    return text


@pytest.fixture
async def openai_auth() -> AsyncIterator[tuple[FakeOpenAIAuth, str]]:
    fake = FakeOpenAIAuth(email=EMAIL, account_id=ACCOUNT)
    async with fake.serve() as url:
        yield fake, url


async def login(auth_url: str, tmp_path: Path, *, forge_first: bool = False) -> tuple[list[Any], list[httpx.Response]]:
    """Drive the login as ``cliproxy login codex --no-browser`` does, with a scripted user."""
    urls: asyncio.Queue[str] = asyncio.Queue()
    answers: list[httpx.Response] = []
    http = HttpClients()
    ctx = LoginContext(http=http, settings=settings_for(tmp_path, auth_url))

    async def user() -> None:
        url = await urls.get()
        if forge_first:
            answers.append(await asyncio.to_thread(follow_login_url, url, forge_state=True))
        answers.append(await asyncio.to_thread(follow_login_url, url))

    task = asyncio.create_task(user())
    try:
        opts = LoginOptions(no_browser=True, callback_port=free_port())
        results = await run_login(CodexAuthenticator(), opts, ctx, show_url=urls.put_nowait)
        await task
    finally:
        task.cancel()
        await http.aclose()
    return results, answers


# ------------------------------------------------------------------------------------------------ login


async def test_login_writes_the_reference_file(tmp_path: Path, openai_auth: tuple[FakeOpenAIAuth, str]) -> None:
    fake, base = openai_auth
    results, answers = await login(base, tmp_path)
    assert answers[0].status_code == 200 and "Login successful" in answers[0].text
    assert fake.problems == []
    [authorize] = [r for r in fake.requests if r.path == "/oauth/authorize"]
    q = authorize.query
    assert q["client_id"] == CLIENT_ID == "app_EMoamEEZ73f0CkXaXp7hrann"
    assert q["redirect_uri"].startswith("http://localhost:") and q["redirect_uri"].endswith("/auth/callback")
    assert q["scope"] == "openid email profile offline_access"
    assert q["code_challenge_method"] == "S256" and len(q["state"]) == 32
    assert (q["prompt"], q["id_token_add_organizations"], q["codex_cli_simplified_flow"]) == ("login", "true", "true")
    [exchange] = fake.token_requests
    assert exchange.form is not None  # form-encoded, as OpenAI requires
    assert exchange.form["grant_type"] == "authorization_code" and exchange.form["client_id"] == CLIENT_ID
    assert exchange.form["redirect_uri"] == q["redirect_uri"] and exchange.form["code_verifier"]

    [path] = save_results(tmp_path / "auths", results)
    assert path.name == f"codex-{EMAIL}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = msgspec.json.decode(path.read_bytes())
    assert sorted(data) == sorted(REFERENCE_KEYS)
    issued = fake.issued[0]
    assert data["access_token"] == issued.access_token and data["refresh_token"] == issued.refresh_token
    assert (data["email"], data["account_id"], data["type"]) == (EMAIL, ACCOUNT, "codex")
    assert decode_jwt_claims(data["id_token"])["email"] == EMAIL
    expired = datetime.fromisoformat(data["expired"]).timestamp()
    assert abs(expired - (time.time() + fake.expires_in)) < 60
    # What we wrote, we read back as a working credential.
    cred = plugin.credential_from_file(path, data)
    assert cred is not None and cred.provider == "codex" and cred.label == EMAIL and cred.source == str(path)


async def test_a_forged_callback_is_refused_and_never_exchanged(
    tmp_path: Path, openai_auth: tuple[FakeOpenAIAuth, str]
) -> None:
    fake, base = openai_auth
    results, answers = await login(base, tmp_path, forge_first=True)
    assert answers[0].status_code == 400 and answers[1].status_code == 200
    assert len(fake.token_requests) == 1 and len(results) == 1


async def test_a_login_without_email_or_chatgpt_account_fails_with_one_line(tmp_path: Path) -> None:
    fake = FakeOpenAIAuth(email="", account_id="")
    async with fake.serve() as base:
        with pytest.raises(LoginError, match="names no email"):
            await login(base, tmp_path)
        fake.email = EMAIL
        assert fake.id_token_claims is not None
        fake.id_token_claims = {}
        with pytest.raises(LoginError, match="names no ChatGPT account"):
            await login(base, tmp_path)


async def test_login_url_and_ports() -> None:
    auth = CodexAuthenticator()
    ctx = LoginContext(http=HttpClients(), settings=load_settings(None))
    pending = await auth.start_login(LoginOptions(), ctx)
    assert isinstance(pending, CodexLogin)
    assert pending.callback_port == 1455 and pending.callback_path == "/auth/callback"
    assert pending.success_path == "/success"
    assert pending.url.startswith("https://auth.openai.com/oauth/authorize?client_id=app_EMoamEEZ73f0CkXaXp7hrann&")
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback" in pending.url
    other = await auth.start_login(LoginOptions(callback_port=28123), ctx)
    assert isinstance(other, CodexLogin) and other.redirect_uri == "http://localhost:28123/auth/callback"
    host = PluginHost(make_plugin_manager(entry_points=True))
    registered = host.authenticators().items["codex"]
    assert registered.login_names == ("codex", "chatgpt")
    assert registered.refresh_lead is not None and registered.refresh_lead.days == 5


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture
def auth_in_thread() -> Iterator[tuple[FakeOpenAIAuth, str]]:
    fake = FakeOpenAIAuth(email=EMAIL, account_id=ACCOUNT)
    with fake.serve_in_thread() as url:
        yield fake, url


def start_cli(tmp_path: Path, base: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auths'}\n" + endpoints_yaml(base))
    argv = [BIN, *args, "--no-browser", "--config", str(cfg), "--callback-port", str(free_port())]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("http"):
            return proc, line.strip()
    proc.kill()
    raise AssertionError(f"no login URL printed: {proc.communicate()}")


@pytest.mark.parametrize("args", [("login", "codex"), ("--codex-login",)], ids=["login-codex", "codex-login-flag"])
def test_cli_login_as_a_user_runs_it(
    tmp_path: Path, auth_in_thread: tuple[FakeOpenAIAuth, str], args: tuple[str, ...]
) -> None:
    fake, base = auth_in_thread
    proc, url = start_cli(tmp_path, base, *args)
    assert url.startswith(f"{base}/oauth/authorize?client_id={CLIENT_ID}&")
    answer = follow_login_url(url)
    _, err = proc.communicate(timeout=60)
    assert answer.status_code == 200, answer.text
    assert proc.returncode == 0, err
    path = tmp_path / "auths" / f"codex-{EMAIL}.json"
    assert f"saved {path}" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = msgspec.json.decode(path.read_bytes())
    assert sorted(data) == sorted(REFERENCE_KEYS) and data["account_id"] == ACCOUNT
    assert fake.problems == []


def test_cli_login_with_a_forged_state_writes_nothing(
    tmp_path: Path, auth_in_thread: tuple[FakeOpenAIAuth, str]
) -> None:
    fake, base = auth_in_thread
    proc, url = start_cli(tmp_path, base, "login", "codex")
    try:
        forged = follow_login_url(url, forge_state=True)
        assert forged.status_code == 400
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting for the genuine callback
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert fake.token_requests == []  # the forged code was never exchanged
    auths = tmp_path / "auths"
    assert not auths.exists() or list(auths.iterdir()) == []


# ------------------------------------------------------------------------------------------------ auth files


def reference_file(**over: Any) -> dict[str, Any]:
    data = {
        "id_token": "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImJvYkBleGFtcGxlLmNvbSJ9.c2ln",
        "access_token": "at-bob-expired",
        "refresh_token": "rt-bob-1",
        "account_id": "acct-bob",
        "last_refresh": "2025-10-31T12:00:00+08:00",
        "email": "bob@example.com",
        "type": "codex",
        "expired": "2025-11-10T12:00:00+08:00",
    }
    data.update(over)
    return data


def test_reference_files_load_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "codex-bob@example.com.json"
    data = reference_file(proxy_url="socks5://127.0.0.1:1080")
    cred = plugin.credential_from_file(path, data)
    assert cred is not None
    assert (cred.id, cred.provider, cred.executor, cred.label) == (path.name, "codex", "codex", "bob@example.com")
    assert cred.metadata == data and cred.api_key is None and cred.models is None
    assert cred.proxy_url == "socks5://127.0.0.1:1080" and not cred.disabled
    assert plugin.credential_from_file(path, reference_file(type="Codex", disabled=True)).disabled  # type: ignore[union-attr]
    assert plugin.credential_from_file(path, reference_file(label="work")).label == "work"  # type: ignore[union-attr]
    assert plugin.credential_from_file(path, {"type": "claude"}) is None
    assert plugin.credential_from_file(path, {"access_token": "x"}) is None


# ------------------------------------------------------------------------------------------------ refresh


async def refresh_with(fake: FakeOpenAIAuth, base: str, cred: Credential, tmp_path: Path, **kw: Any) -> Credential:
    http = CredentialHttp(HttpClients(), None, settings_for(tmp_path, base))
    try:
        return await CodexAuthenticator(**kw).refresh(cred, http)
    finally:
        await http._base.aclose()


def file_cred(**over: Any) -> Credential:
    data = reference_file(**over)
    return Credential(
        id="codex-bob@example.com.json", provider="codex", executor="codex", label="bob@example.com", metadata=data
    )


async def test_refresh_rereads_the_account_from_the_new_id_token(
    tmp_path: Path, openai_auth: tuple[FakeOpenAIAuth, str]
) -> None:
    fake, base = openai_auth
    fake.add_refresh_token("rt-bob-1")
    fake.email = "bob@example.com"
    fake.id_token_claims = chatgpt_claims("acct-bob-moved")
    fresh = await refresh_with(fake, base, file_cred(), tmp_path)
    [req] = fake.token_requests
    assert req.form == {
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": "rt-bob-1",
        "scope": "openid profile email",
    }
    issued = fake.issued[-1]
    meta = fresh.metadata
    assert meta["access_token"] == issued.access_token and meta["refresh_token"] == issued.refresh_token
    assert meta["account_id"] == "acct-bob-moved"
    assert account_claims(meta["id_token"]) == ("bob@example.com", "acct-bob-moved")
    assert sorted(meta) == sorted(REFERENCE_KEYS)
    assert datetime.fromisoformat(meta["expired"]).timestamp() > time.time() + 86400
    assert datetime.fromisoformat(meta["last_refresh"]).timestamp() > time.time() - 60
    assert fake.problems == []


async def test_refresh_never_blanks_identity_fields(tmp_path: Path, openai_auth: tuple[FakeOpenAIAuth, str]) -> None:
    fake, base = openai_auth
    fake.add_refresh_token("rt-bob-1")
    fake.id_token_claims = None  # the answer carries no id_token at all
    fake.rotate_refresh = False
    fresh = await refresh_with(fake, base, file_cred(), tmp_path)
    meta = fresh.metadata
    assert (meta["email"], meta["account_id"], fresh.label) == ("bob@example.com", "acct-bob", "bob@example.com")
    assert meta["id_token"] == reference_file()["id_token"]
    assert meta["refresh_token"] == "rt-bob-1"  # not rotated: the old one stays
    # An id_token without the ChatGPT claim keeps the stored account id too.
    fake.id_token_claims = {}
    fake.email = ""
    again = await refresh_with(fake, base, fresh, tmp_path)
    assert (again.metadata["email"], again.metadata["account_id"]) == ("bob@example.com", "acct-bob")


async def test_refresh_retries_server_errors_but_not_a_refused_token(
    tmp_path: Path, openai_auth: tuple[FakeOpenAIAuth, str]
) -> None:
    fake, base = openai_auth
    fake.add_refresh_token("rt-bob-1")
    fake.fail_next(2, status=503, error="temporarily_unavailable")
    fresh = await refresh_with(fake, base, file_cred(), tmp_path, retry_waits=(0.01, 0.01))
    assert len(fake.token_requests) == 3 and fresh.metadata["access_token"] == fake.issued[-1].access_token
    fake.requests.clear()
    with pytest.raises(LoginError, match="status 400: invalid_grant") as info:
        await refresh_with(fake, base, file_cred(), tmp_path, retry_waits=(0.01, 0.01))  # rt-bob-1 was rotated
    assert len(fake.token_requests) == 1
    assert "rt-bob-1" not in str(info.value)
    with pytest.raises(LoginError, match="no refresh_token"):
        await refresh_with(fake, base, file_cred(refresh_token=""), tmp_path)


async def test_refresh_uses_the_token_url_override_of_the_live_settings(tmp_path: Path) -> None:
    """Without the settings the real auth.openai.com would be asked; with them, the configured URL."""
    fake = FakeOpenAIAuth(refresh_tokens=["rt-bob-1"])
    async with serve_on_loopback(fake) as base:
        fresh = await refresh_with(fake, base, file_cred(), tmp_path)
    assert fresh.metadata["access_token"] == fake.issued[0].access_token
