"""``cliproxy login iflow``: the browser flow as a user runs it (a real subprocess) and its failure modes."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, urlsplit

import pytest

from cliproxy.config import load_settings
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginContext, RedirectLogin
from cliproxy.protocols import LoginOptions
from cliproxy.testing.browser import follow_login_url
from cliproxy_iflow.auth import CALLBACK_PORT, CLIENT_ID, IFlowAuthenticator
from cliproxy_iflow.testing import FakeIFlow, iflow_endpoints

BIN = Path(sys.executable).parent / "cliproxy"
REFERENCE_KEYS = {
    "access_token",
    "refresh_token",
    "last_refresh",
    "expired",
    "api_key",
    "email",
    "token_type",
    "scope",
    "type",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, url: str) -> Path:
    cfg = tmp_path / "config.yaml"
    # debug: true, so that anything logged at all would show up in the output checked below.
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\ndebug: true\n{iflow_endpoints(url)}")
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
        self.stdout: list[str] = []
        self.stderr = ""
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.stdout.append(line)
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
                return line.strip()

    def wait(self, timeout: float = 30) -> int:
        try:
            _, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()
            raise
        return self.proc.returncode

    def output(self) -> str:
        return "".join(self.stdout) + self.stderr


@contextmanager
def fake_iflow(**kw: str) -> Iterator[tuple[FakeIFlow, str]]:
    fake = FakeIFlow(**kw)
    with fake.serve_in_thread() as url:
        yield fake, url


def test_headless_login_writes_the_reference_file(tmp_path: Path) -> None:
    port = free_port()
    with fake_iflow(email="ann@example.com") as (fake, url):
        argv = [
            "login",
            "iflow",
            "--no-browser",
            "--callback-port",
            str(port),
            "--config",
            str(write_config(tmp_path, url)),
        ]
        login = Login(argv)
        link = login.url()
        query = dict(parse_qsl(urlsplit(link).query))
        assert link.startswith(f"{url}/oauth?")
        assert query["redirect"] == f"http://localhost:{port}/oauth2callback" and "redirect_uri" not in query
        assert (query["loginMethod"], query["type"], query["client_id"]) == ("phone", "phone", CLIENT_ID)
        answer = follow_login_url(link)
        assert answer.status_code == 200 and "Login successful" in answer.text
        assert login.wait() == 0, login.stderr
    path = tmp_path / "auth" / "iflow-ann@example.com.json"
    assert f"saved {path}" in login.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == REFERENCE_KEYS
    [issued] = fake.issued
    assert (data["access_token"], data["refresh_token"]) == (issued.access_token, issued.refresh_token)
    assert (data["api_key"], data["email"], data["type"]) == (fake.api_key, "ann@example.com", "iflow")
    assert data["expired"].endswith("Z")
    assert fake.problems == []  # Basic auth + secret, redirect match, accessToken in the query
    lookup = next(r for r in fake.requests if r.path == "/api/oauth/getUserInfo")
    assert lookup.query["accessToken"] == issued.access_token and lookup.header("authorization") is None
    for secret in (issued.access_token, fake.api_key, str(issued.refresh_token)):
        assert secret not in login.output()  # the getUserInfo URL (token inside) is never logged


def test_a_phone_account_is_named_by_its_phone(tmp_path: Path) -> None:
    with fake_iflow(email="", phone="13800138000") as (_fake, url):
        argv = ["login", "iflow", "--no-browser", "--callback-port", str(free_port())]
        login = Login([*argv, "--config", str(write_config(tmp_path, url))])
        follow_login_url(login.url())
        assert login.wait() == 0, login.stderr
    data = json.loads((tmp_path / "auth" / "iflow-13800138000.json").read_text())
    assert data["email"] == "13800138000"


def test_a_forged_state_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with fake_iflow() as (fake, url):
        argv = ["login", "iflow", "--no-browser", "--callback-port", str(free_port())]
        login = Login([*argv, "--config", str(write_config(tmp_path, url))])
        forged = follow_login_url(login.url(), forge_state=True)
        assert forged.status_code == 400
        time.sleep(0.3)
        assert login.proc.poll() is None  # still waiting for the genuine callback
        login.proc.send_signal(signal.SIGINT)
        assert login.wait() != 0
    assert fake.token_requests == []  # the forged code was never exchanged
    assert not (tmp_path / "auth").exists() or list((tmp_path / "auth").iterdir()) == []


def test_an_account_without_api_key_fails_with_one_line(tmp_path: Path) -> None:
    with fake_iflow() as (fake, url):
        fake.api_key = ""
        argv = ["login", "iflow", "--no-browser", "--callback-port", str(free_port())]
        login = Login([*argv, "--config", str(write_config(tmp_path, url))])
        answer = follow_login_url(login.url())
        assert answer.status_code == 400
        assert login.wait() == 1
    assert "error: iFlow account lookup failed: the account has no API key" in login.stderr
    assert not (tmp_path / "auth").exists() or list((tmp_path / "auth").iterdir()) == []


async def test_the_default_callback_is_localhost_11451(tmp_path: Path) -> None:
    http = HttpClients()
    try:
        ctx = LoginContext(http=http, settings=load_settings(None))
        pending = await IFlowAuthenticator().start_login(LoginOptions(no_browser=True), ctx)
    finally:
        await http.aclose()
    assert isinstance(pending, RedirectLogin)
    assert (
        (pending.callback_port, pending.callback_path)
        == (CALLBACK_PORT, "/oauth2callback")
        == (11451, "/oauth2callback")
    )
    query = dict(parse_qsl(urlsplit(pending.url).query))
    assert pending.url.startswith("https://iflow.cn/oauth?")
    assert query["redirect"] == "http://localhost:11451/oauth2callback" and query["state"] == pending.state
    assert len(pending.state) == 32


@pytest.mark.parametrize("flag", ["--iflow-login"])
def test_the_reference_flag_names_this_login(flag: str, tmp_path: Path) -> None:
    """``--iflow-login`` reaches this plugin (it listens on 11451, so only its first line is checked here)."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n{iflow_endpoints('http://127.0.0.1:9')}")
    if not _port_free(CALLBACK_PORT):
        pytest.skip("port 11451 is busy on this machine")
    login = Login([flag, "--no-browser", "--config", str(cfg)])
    try:
        link = login.url()
        assert link.startswith("http://127.0.0.1:9/oauth?") and "11451" in link
    finally:
        login.proc.send_signal(signal.SIGINT)
        login.wait()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
