"""The login machinery every OAuth plugin shares, driven over real sockets against the fake OAuth server."""

from __future__ import annotations

import asyncio
import socket
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from click.testing import CliRunner
from dependency_injector import providers

from cliproxy import hookimpl
from cliproxy.cli import cli
from cliproxy.config import load_settings
from cliproxy.container import Container
from cliproxy.credentials import Credential
from cliproxy.http import HttpClients
from cliproxy.oauth import (
    DeviceLogin,
    LoginContext,
    LoginError,
    LoginResult,
    PendingLogin,
    RedirectLogin,
    decode_jwt_claims,
    endpoint,
    new_state,
    pkce_pair,
    request_json,
    safe_name,
)
from cliproxy.oauth.driver import run_login, save_results
from cliproxy.plugins import make_plugin_manager
from cliproxy.protocols import LoginOptions
from cliproxy.registries import AuthenticatorRegistrar
from cliproxy.testing import FakeOAuthServer
from cliproxy.testing.browser import follow_login_url

CLIENT_ID = "acme-cli"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AcmeLogin(RedirectLogin):
    """A typical PKCE authorization-code login, as the Claude and Codex plugins write theirs."""

    def __init__(self, base: str, port: int, timeout: float, success_path: str | None = None) -> None:
        self.base = base
        self.verifier, challenge = pkce_pair()
        state = new_state()
        self.redirect = f"http://localhost:{port}/callback"
        query = httpx.QueryParams(
            client_id=CLIENT_ID,
            response_type="code",
            redirect_uri=self.redirect,
            state=state,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        super().__init__(
            provider="acme",
            state=state,
            url=f"{base}/oauth/authorize?{query}",
            callback_port=port,
            callback_path="/callback",
            success_path=success_path,
            timeout=timeout,
        )

    async def exchange(self, code: str, query: Mapping[str, str], ctx: LoginContext) -> list[LoginResult]:
        token = await request_json(
            ctx.http.client(),
            "POST",
            f"{self.base}/oauth/token",
            what="token exchange",
            data={
                "grant_type": "authorization_code",
                "client_id": CLIENT_ID,
                "code": code,
                "redirect_uri": self.redirect,
                "code_verifier": self.verifier,
            },
        )
        email = decode_jwt_claims(token["id_token"])["email"]
        cred = Credential(
            id=f"acme:{email}",
            provider="acme",
            executor="acme",
            label=email,
            metadata={"email": email, "access_token": token["access_token"], "code": code},
        )
        return [LoginResult(cred, f"acme-{safe_name(email)}.json")]


class AcmeAuth:
    provider = "acme"
    login_names = ("acme", "acme-ai")
    refresh_lead: timedelta | None = None

    def __init__(self, base: str, port: int, timeout: float = 20.0, success_path: str | None = None) -> None:
        self.base, self.port, self.timeout, self.success_path = base, port, timeout, success_path

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        base = endpoint(ctx.settings, "acme", "url", self.base)
        return AcmeLogin(base, opts.callback_port or self.port, self.timeout, self.success_path)

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        return cred


async def _login(
    auth: AcmeAuth, *, forge_first: bool = False, follow: bool = True
) -> tuple[list[LoginResult], list[httpx.Response]]:
    urls: asyncio.Queue[str] = asyncio.Queue()
    answers: list[httpx.Response] = []
    http = HttpClients()
    ctx = LoginContext(http=http, settings=load_settings(None))

    async def user() -> None:
        url = await urls.get()
        if forge_first:
            answers.append(await asyncio.to_thread(follow_login_url, url, forge_state=True))
        if follow:
            answers.append(await asyncio.to_thread(follow_login_url, url))

    task = asyncio.create_task(user())
    try:
        results = await run_login(
            auth, LoginOptions(no_browser=True), ctx, show_url=urls.put_nowait, open_browser=lambda _u: False
        )
        await task
    finally:
        task.cancel()
        await http.aclose()
    return results, answers


async def test_redirect_login_exchanges_the_code_with_pkce_and_saves_0600(tmp_path: Path) -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={}, email="ann@example.com")
    async with fake.serve() as base:
        results, answers = await _login(AcmeAuth(base, free_port()))
    assert answers[0].status_code == 200 and "Login successful" in answers[0].text
    [result] = results
    assert result.credential.metadata["email"] == "ann@example.com"
    assert "/" in result.credential.metadata["code"]  # percent-decoded properly
    assert fake.issued[0].grant_type == "authorization_code"
    [path] = save_results(tmp_path, results)
    assert path == tmp_path / "acme-ann@example.com.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert msgspec.json.decode(path.read_bytes())["type"] == "acme"


async def test_a_forged_state_is_refused_and_the_login_keeps_waiting() -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={})
    async with fake.serve() as base:
        results, answers = await _login(AcmeAuth(base, free_port()), forge_first=True)
    assert answers[0].status_code == 400  # the forged callback
    assert answers[1].status_code == 200
    assert len(results) == 1
    assert len(fake.issued) == 1  # only the genuine code was exchanged


async def test_a_denied_consent_fails_with_one_line() -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={})
    fake.deny_next = "access_denied"
    async with fake.serve() as base:
        with pytest.raises(LoginError, match="authorization was denied: access_denied"):
            await _login(AcmeAuth(base, free_port()))
    assert fake.issued == []


async def test_a_failed_exchange_names_the_step_and_the_status() -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={})
    fake.fail_next(1, status=400, error="invalid_grant")
    async with fake.serve() as base:
        with pytest.raises(LoginError, match="token exchange failed with status 400: invalid_grant"):
            await _login(AcmeAuth(base, free_port()))


async def test_a_busy_callback_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LoginError, match=f"port {port} on 127.0.0.1 is already in use"):
            await _login(AcmeAuth("http://127.0.0.1:9", port), follow=False)


async def test_nobody_coming_back_times_out() -> None:
    with pytest.raises(LoginError, match="timed out waiting for the OAuth callback"):
        await _login(AcmeAuth("http://127.0.0.1:9", free_port(), timeout=0.3), follow=False)


async def test_the_callback_server_answers_only_its_path_and_get() -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={})
    port = free_port()
    async with fake.serve() as base:
        login_task = asyncio.create_task(_login(AcmeAuth(base, port, timeout=0.5), follow=False))
        await asyncio.sleep(0.15)
        async with httpx.AsyncClient() as client:
            other = await client.get(f"http://127.0.0.1:{port}/elsewhere")
            post = await client.post(f"http://127.0.0.1:{port}/callback?state=x&code=y")
            no_state = await client.get(f"http://127.0.0.1:{port}/callback?code=y")
        with pytest.raises(LoginError):
            await login_task
    assert (other.status_code, post.status_code, no_state.status_code) == (404, 405, 400)


async def test_the_success_page_beside_the_callback_is_served() -> None:
    fake = FakeOAuthServer(client_id=CLIENT_ID, id_token_claims={})
    port = free_port()
    async with fake.serve() as base:
        auth = AcmeAuth(base, port, success_path="/success")
        urls: asyncio.Queue[str] = asyncio.Queue()
        http = HttpClients()
        ctx = LoginContext(http=http, settings=load_settings(None))
        login = asyncio.create_task(
            run_login(auth, LoginOptions(no_browser=True), ctx, show_url=urls.put_nowait, open_browser=lambda _u: False)
        )
        url = await urls.get()
        async with httpx.AsyncClient() as client:
            waiting = await client.get(f"http://127.0.0.1:{port}/success")
            post = await client.post(f"http://127.0.0.1:{port}/success")
            consent = await client.get(url)
            callback = await client.get(consent.headers["location"])
            results = await login
        await http.aclose()
    assert waiting.status_code == 200 and "still waiting" in waiting.text
    assert post.status_code == 405
    assert callback.status_code == 200 and "Login successful" in callback.text  # no redirect: the server stops
    assert len(results) == 1


def test_unsafe_file_names_are_refused(tmp_path: Path) -> None:
    cred = Credential(id="x", provider="acme", executor="acme", metadata={"a": 1})
    for name in (str(Path("..", "evil.json")), ".hidden.json", "a/b.json", ""):
        with pytest.raises(LoginError, match="unsafe file name"):
            save_results(tmp_path, [LoginResult(cred, name)])
    assert list(tmp_path.iterdir()) == []


def test_helpers() -> None:
    verifier, challenge = pkce_pair()
    assert len(verifier) == 128 and "=" not in challenge
    assert len(new_state()) == 32
    assert safe_name(str(Path("..", "a b@c.com"))) == "a_b@c.com"
    assert decode_jwt_claims("not-a-jwt") == {}
    settings = load_settings(None)
    assert endpoint(settings, "claude", "token-url", "https://real") == "https://real"


def test_endpoint_overrides_come_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("endpoints:\n  claude:\n    token-url: http://127.0.0.1:1/token\n")
    settings = load_settings(cfg)
    assert endpoint(settings, "claude", "token-url", "https://real") == "http://127.0.0.1:1/token"
    assert endpoint(settings, "claude", "auth-url", "https://real/a") == "https://real/a"
    assert settings.warnings == []


class _Approved(DeviceLogin):
    async def poll(self, ctx: LoginContext) -> list[LoginResult]:
        cred = Credential(id="dev:1", provider="devauth", executor="x", metadata={"access_token": "t"})
        return [LoginResult(cred, "devauth-1.json")]


class DevAuth:
    provider = "devauth"
    login_names = ("devauth", "gemini")
    refresh_lead: timedelta | None = None

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        return _Approved(provider="devauth", state="s", url="http://127.0.0.1:9/device?user_code=AB", user_code="AB")

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        return cred


class DevPlugin:
    @hookimpl
    def register_authenticators(self, register: AuthenticatorRegistrar) -> None:
        register(DevAuth())


@pytest.mark.parametrize("argv", [["login", "devauth", "--no-browser"], ["--login", "--no-browser"]])
def test_cli_login_and_the_reference_flag_print_the_url_alone_and_save(tmp_path: Path, argv: list[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n")
    pm = make_plugin_manager(entry_points=False, extra=[DevPlugin()])
    with Container.plugin_manager.override(providers.Object(pm)):
        result = CliRunner().invoke(cli, [*argv, "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9/device?user_code=AB\n" in result.stdout
    assert "code is AB" in result.stderr
    assert (tmp_path / "auth" / "devauth-1.json").is_file()


def test_cli_rejects_two_login_flags(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--login", "--claude-login"])
    assert result.exit_code == 2 and "one login flag at a time" in result.output
