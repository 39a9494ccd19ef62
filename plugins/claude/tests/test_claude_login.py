"""``cliproxy login claude`` as a user runs it, against a fake Anthropic OAuth server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msgspec
import pytest

from cliproxy.config import load_settings
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginContext, LoginError
from cliproxy.testing.browser import follow_login_url
from cliproxy_claude.oauth import CALLBACK_PORT, CLIENT_ID, SCOPES, ClaudeLogin
from cliproxy_claude.testing import FakeAnthropicOAuth

BIN = Path(sys.executable).parent / "cliproxy"
EMAIL = "ada@example.com"
#: The fields CLIProxyAPI writes into a ``type: claude`` file; a login writes exactly these.
REFERENCE_FIELDS = {"id_token", "access_token", "refresh_token", "last_refresh", "email", "type", "expired"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def oauth() -> Iterator[tuple[FakeAnthropicOAuth, str]]:
    fake = FakeAnthropicOAuth(email=EMAIL)
    with fake.serve_in_thread() as url:
        yield fake, url


def write_config(tmp_path: Path, oauth_url: str) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"auth-dir: {tmp_path / 'auth'}\n"
        "endpoints:\n"
        "  claude:\n"
        f"    auth-url: {oauth_url}/oauth/authorize\n"
        f"    token-url: {oauth_url}/v1/oauth/token\n"
    )
    return cfg


class LoginProcess:
    """``cliproxy login ...`` in a subprocess; its stdout lines are read on a thread."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [str(BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: Queue[str] = Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def url(self, timeout: float = 60.0) -> str:
        """The line that holds the login URL alone."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except Empty:
                self.proc.kill()
                raise AssertionError("cliproxy login printed no URL") from None
            if line.startswith("http"):
                return line.strip()

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


def test_no_browser_login_writes_the_reference_file(tmp_path: Path, oauth: tuple[FakeAnthropicOAuth, str]) -> None:
    fake, url = oauth
    port = free_port()
    login = LoginProcess("login", "claude", "--no-browser", "--config", str(write_config(tmp_path, url)),
                         "--callback-port", str(port))  # fmt: skip
    link = login.url()
    answer = follow_login_url(link)
    code, stderr = login.finish()
    assert code == 0, stderr
    assert answer.status_code == 200 and "Login successful" in answer.text

    # The authorize URL is Claude Code's: public client, PKCE S256, its scopes, our loopback callback.
    assert link.startswith(f"{url}/oauth/authorize?")
    query = dict(parse_qsl(urlsplit(link).query))
    assert query["client_id"] == CLIENT_ID and query["code"] == "true"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == f"http://localhost:{port}/callback"
    assert query["scope"] == SCOPES and len(query["state"]) == 32

    # The exchange is JSON with the bare code (the '#state' suffix split off) and the state.
    [exchange] = fake.token_requests
    assert exchange.header("content-type") == "application/json" and exchange.form is None
    assert exchange.json["grant_type"] == "authorization_code" and exchange.json["state"] == query["state"]
    assert "#" not in exchange.json["code"] and exchange.json["client_id"] == CLIENT_ID
    assert fake.refusals == []

    path = tmp_path / "auth" / f"claude-{EMAIL}.json"
    assert f"saved {path}" in stderr and f"Logged in to Claude as {EMAIL}" in stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == REFERENCE_FIELDS
    assert data["type"] == "claude" and data["email"] == EMAIL
    assert data["access_token"] == fake.issued[0].access_token
    assert data["refresh_token"] == fake.issued[0].refresh_token
    assert data["expired"].endswith("Z") and data["last_refresh"].endswith("Z")
    assert fake.issued[0].access_token not in stderr  # tokens never reach the terminal


def test_a_forged_state_writes_nothing(tmp_path: Path, oauth: tuple[FakeAnthropicOAuth, str]) -> None:
    fake, url = oauth
    login = LoginProcess("login", "claude", "--no-browser", "--config", str(write_config(tmp_path, url)),
                         "--callback-port", str(free_port()))  # fmt: skip
    answer = follow_login_url(login.url(), forge_state=True)
    assert answer.status_code == 400 and "does not belong to the running login" in answer.text
    assert login.proc.poll() is None  # still waiting for the genuine callback
    login.proc.send_signal(signal.SIGINT)
    code, stderr = login.finish()
    assert code == 130 and "login cancelled" in stderr
    assert fake.token_requests == [] and fake.issued == []
    assert not (tmp_path / "auth").exists() or list((tmp_path / "auth").iterdir()) == []


def test_reference_flag_uses_the_claude_callback_port(tmp_path: Path, oauth: tuple[FakeAnthropicOAuth, str]) -> None:
    """``cliproxy --claude-login`` (CLIProxyAPI's flag) listens on Claude Code's own port, 54545."""
    _, url = oauth
    login = LoginProcess("--claude-login", "--no-browser", "--config", str(write_config(tmp_path, url)))
    link = login.url()
    assert dict(parse_qsl(urlsplit(link).query))["redirect_uri"] == f"http://localhost:{CALLBACK_PORT}/callback"
    answer = follow_login_url(link)
    code, stderr = login.finish()
    assert code == 0 and answer.status_code == 200, stderr
    assert (tmp_path / "auth" / f"claude-{EMAIL}.json").is_file()


# ------------------------------------------------------------------------------------- the flow in-process


def callback(code: str, state: str | None) -> dict[str, str]:
    return {"code": code, **({"state": state} if state is not None else {})}


def test_code_hash_state_rules() -> None:
    login = ClaudeLogin(load_settings(None), free_port())
    s = login.state
    assert login.accepts(callback(f"abc#{s}", s))
    assert login.accepts(callback(f"abc#{s}", None))  # the suffix alone is enough
    assert login.accepts(callback("abc", s))  # so is the parameter alone
    assert not login.accepts(callback(f"abc#{s}", "forged"))
    assert not login.accepts(callback("abc#forged", s))  # a forged suffix is caught too
    assert not login.accepts(callback("abc#forged", None))
    assert not login.accepts(callback("abc", None))


async def test_an_answer_without_account_email_fails_and_names_it(
    tmp_path: Path, oauth: tuple[FakeAnthropicOAuth, str]
) -> None:
    fake, url = oauth
    fake.token_extra = {}
    settings = load_settings(write_config(tmp_path, url))
    login = ClaudeLogin(settings, free_port())
    async with httpx.AsyncClient(follow_redirects=False) as client:
        consent = await client.get(login.url)
    query = dict(parse_qsl(urlsplit(consent.headers["location"]).query))
    http = HttpClients()
    try:
        with pytest.raises(LoginError, match=r"named no account \(account.email_address\)"):
            await login.complete(query, LoginContext(http=http, settings=settings))
    finally:
        await http.aclose()


def test_the_token_endpoint_fake_refuses_what_anthropic_refuses(oauth: tuple[FakeAnthropicOAuth, str]) -> None:
    fake, url = oauth
    assert fake.refusals == []
    params = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "http://localhost:1/callback",
              "state": "s" * 32, "code_challenge": "x" * 43, "code_challenge_method": "S256"}  # fmt: skip
    with httpx.Client() as client:
        no_code_true = client.get(f"{url}/oauth/authorize?{urlencode({**params, 'scope': SCOPES})}")
        assert no_code_true.status_code == 400
        form = client.post(f"{url}/v1/oauth/token", data={"grant_type": "authorization_code", "code": "x"})
        assert form.status_code == 400 and "JSON body" in form.text
        hashed = client.post(f"{url}/v1/oauth/token", json={"grant_type": "authorization_code", "code": "x#y"})
        assert "without its #state suffix" in msgspec.json.decode(hashed.content)["error_description"]
    assert len(fake.refusals) == 3
