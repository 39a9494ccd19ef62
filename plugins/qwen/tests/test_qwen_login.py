"""``cliproxy login qwen``: the device flow as a user runs it (a real subprocess) and in-process edge cases."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from cliproxy.config import load_settings
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginContext, LoginError
from cliproxy.oauth.driver import run_login
from cliproxy.protocols import LoginOptions
from cliproxy_qwen.auth import CLIENT_ID, DEVICE_GRANT, QwenAuthenticator, QwenDeviceLogin, slowed_interval
from cliproxy_qwen.testing import FakeQwen, qwen_endpoints

BIN = Path(sys.executable).parent / "cliproxy"
REFERENCE_KEYS = {"access_token", "refresh_token", "last_refresh", "resource_url", "email", "type", "expired"}


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n{qwen_endpoints(url)}{extra}")
    return cfg


class Login:
    """A ``cliproxy login`` subprocess whose stdout lines are read without blocking the test."""

    def __init__(self, argv: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPROXY_")}
        self.proc = subprocess.Popen(
            [str(BIN), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr = ""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no URL printed; stderr: {self.proc.communicate()[1]}") from None
            if line.startswith("http"):
                assert line == line.strip() + "\n", "the URL must be alone on its line"
                return line.strip()

    def wait(self, timeout: float = 30) -> int:
        try:
            _, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
            raise
        return self.proc.returncode


@contextmanager
def fake_qwen(**kw: object) -> Iterator[tuple[FakeQwen, str]]:
    fake = FakeQwen(**kw)  # type: ignore[arg-type]
    with fake.serve_in_thread() as url:
        yield fake, url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------- as a user runs it


@pytest.mark.parametrize(
    "argv",
    [
        ["login", "qwen", "--no-browser", "--alias", "alice@example.com", "--callback-port", "0"],
        ["--qwen-login", "--no-browser", "--alias", "alice@example.com"],
    ],
    ids=["login-qwen", "reference-flag"],
)
def test_headless_device_login_writes_the_reference_file(tmp_path: Path, argv: list[str]) -> None:
    with fake_qwen(interval=0.2) as (fake, url):
        login = Login([*argv, "--config", str(write_config(tmp_path, url))])
        verification = login.url()
        assert verification.startswith(f"{url}/authorize?user_code=")
        time.sleep(0.5)  # the user takes a moment: a few polls answer authorization_pending
        page = httpx.get(verification)  # the user opens the page and approves
        assert page.status_code == 200 and "authorized" in page.text
        assert login.wait() == 0, login.stderr
    user_code = verification.split("user_code=", 1)[1].split("&", 1)[0]
    assert f"the code is {user_code}" in login.stderr
    path = tmp_path / "auth" / "qwen-alice@example.com.json"
    assert f"saved {path}" in login.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == REFERENCE_KEYS
    assert data["type"] == "qwen" and data["email"] == "alice@example.com"
    [issued] = fake.issued
    assert (data["access_token"], data["refresh_token"]) == (issued.access_token, issued.refresh_token)
    assert issued.grant_type == DEVICE_GRANT
    assert data["resource_url"] == url  # where this account's chat lives
    assert data["expired"].endswith("Z") and data["last_refresh"].endswith("Z")
    device = next(r for r in fake.requests if r.path.endswith("/device/code"))
    assert device.form is not None and device.form["client_id"] == CLIENT_ID
    polls = [r for r in fake.token_requests if (r.form or {}).get("grant_type") == DEVICE_GRANT]
    assert len(polls) >= 2  # pending first, then the tokens
    assert fake.problems == []  # PKCE verified, never polled faster than the interval
    assert data["access_token"] not in login.stderr + "".join(list(login.lines.queue))


def test_without_alias_and_without_a_terminal_nothing_is_sent(tmp_path: Path) -> None:
    with fake_qwen() as (fake, url):
        login = Login(["login", "qwen", "--no-browser", "--config", str(write_config(tmp_path, url))])
        assert login.wait() == 1
    assert "--alias" in login.stderr
    assert fake.requests == []
    assert not (tmp_path / "auth").exists() or list((tmp_path / "auth").iterdir()) == []


def test_a_denied_device_fails_and_writes_nothing(tmp_path: Path) -> None:
    with fake_qwen() as (fake, url):
        fake.deny = True
        login = Login(["login", "qwen", "--no-browser", "--alias", "bob", "--config", str(write_config(tmp_path, url))])
        httpx.get(login.url())
        assert login.wait() == 1
    assert "error: authorization was denied" in login.stderr
    assert not (tmp_path / "auth" / "qwen-bob.json").exists()


# ------------------------------------------------------------------------------------------- in-process details


async def _login(
    fake: FakeQwen, url: str, tmp_path: Path, *, approve: bool = True, proxy: str | None = None
) -> QwenDeviceLogin:
    cfg = write_config(tmp_path, url, f"proxy-url: {proxy}\n" if proxy else "")
    settings = load_settings(cfg)
    http = HttpClients(settings.proxy_url or None)
    ctx = LoginContext(http=http, settings=settings)
    shown: asyncio.Queue[str] = asyncio.Queue()
    auth = QwenAuthenticator()
    pending: list[QwenDeviceLogin] = []
    original = auth.start_login

    async def start(opts: LoginOptions, ctx: LoginContext) -> QwenDeviceLogin:
        p = await original(opts, ctx)
        assert isinstance(p, QwenDeviceLogin)
        pending.append(p)
        return p

    auth.start_login = start  # type: ignore[method-assign]

    async def user() -> None:
        link = await shown.get()
        if approve:
            async with httpx.AsyncClient() as c:
                await c.get(link)

    task = asyncio.create_task(user())
    try:
        results = await run_login(
            auth,
            LoginOptions(no_browser=True, alias="carol"),
            ctx,
            show_url=shown.put_nowait,
            open_browser=lambda _u: False,
        )
        await task
    finally:
        task.cancel()
        await http.aclose()
    assert results[0].filename == "qwen-carol.json"
    return pending[0]


async def test_slow_down_makes_every_later_poll_wait_longer(tmp_path: Path) -> None:
    fake = FakeQwen(interval=0)
    fake.slow_down_next = 1
    async with fake.serve() as url:
        started = time.monotonic()
        pending = await _login(fake, url, tmp_path)
    assert pending.slow_downs == 1
    assert pending.interval == 1  # the interval the server named in its slow_down answer
    assert time.monotonic() - started >= 1.0
    assert fake.problems == []


async def test_polls_honour_the_announced_interval(tmp_path: Path) -> None:
    fake = FakeQwen(interval=1)
    async with fake.serve() as url:
        started = time.monotonic()
        await _login(fake, url, tmp_path)
    assert time.monotonic() - started >= 1.0
    assert fake.problems == []  # a poll faster than 1 s would have been reported (and answered slow_down)


async def test_an_expired_device_code_ends_the_login(tmp_path: Path) -> None:
    fake = FakeQwen(interval=0, device_expires_in=0)
    async with fake.serve() as url:
        with pytest.raises(LoginError, match="device code expired"):
            await _login(fake, url, tmp_path, approve=False)


async def test_the_device_flow_goes_through_the_configured_proxy(tmp_path: Path) -> None:
    fake = FakeQwen(interval=0)
    seen: list[str] = []
    async with fake.serve() as url:
        proxy_port = free_port()
        server = await asyncio.start_server(_forwarding_proxy(seen), "127.0.0.1", proxy_port)
        async with server:
            await _login(fake, url, tmp_path, proxy=f"http://127.0.0.1:{proxy_port}")
    # Every call of the login (device code, polls) went through the proxy; only the user's browser did not.
    oauth_calls = [r for r in fake.requests if r.method == "POST"]
    assert len(seen) == len(oauth_calls) >= 2
    assert all(line.startswith(f"POST {url}/api/v1/oauth2/") for line in seen)


def _forwarding_proxy(seen: list[str]) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A tiny HTTP forward proxy (absolute-URI requests, one per connection) that records request lines."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ")
        seen.append(f"{method} {target}")
        length = next(
            (int(v) for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-length"), 0
        )
        body = await reader.readexactly(length)
        async with httpx.AsyncClient() as client:
            upstream = await client.request(method, target, content=body, headers={"content-type": _ctype(lines)})
        writer.write(
            f"HTTP/1.1 {upstream.status_code} X\r\ncontent-type: {upstream.headers.get('content-type', '')}\r\n"
            f"content-length: {len(upstream.content)}\r\nconnection: close\r\n\r\n".encode()
            + upstream.content
        )
        await writer.drain()
        writer.close()

    return handle


def _ctype(lines: list[str]) -> str:
    return next((v for k, _, v in (ln.partition(": ") for ln in lines[1:]) if k.lower() == "content-type"), "")


def test_slowed_interval() -> None:
    assert slowed_interval(2, {"interval": 7}) == 7  # the server names a longer one
    assert slowed_interval(2, {"interval": 1}) == 7  # never faster: +5 s (RFC 8628)
    assert slowed_interval(2, {}) == 7
    assert slowed_interval(2, {"interval": True}) == 7
