"""Token refresh: expiry parsing, scheduling, atomic persistence, failures, single flight, on-demand after 401."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import openai
import pytest
from structlog.testing import capture_logs

from cliproxy import hookimpl
from cliproxy.container import Container
from cliproxy.credentials import Credential, ModelAlias
from cliproxy.http import HttpClients
from cliproxy.oauth import LoginContext, LoginError, PendingLogin
from cliproxy.protocols import LoginOptions
from cliproxy.refresh import CredentialHttp, TokenRefresher, parse_time, token_expiry
from cliproxy.registries import AuthenticatorRegistrar
from cliproxy.runtime import is_auth_file
from cliproxy.testing import FakeOAuthServer, FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy.testing.proxy import build_container, run_proxy

PROVIDER = "testoauth"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class RefreshingAuth:
    """Minimal OAuth authenticator: refresh_token grant against the file's ``token_uri``."""

    provider = PROVIDER
    login_names = (PROVIDER,)
    refresh_lead: timedelta | None = timedelta(minutes=5)
    #: The configuration the last refresh could see (for ``endpoints.<provider>.token-url`` overrides).
    seen_settings: object = None

    async def start_login(self, opts: LoginOptions, ctx: LoginContext) -> PendingLogin:
        raise LoginError("this test provider has no interactive login")

    async def refresh(self, cred: Credential, http: HttpClients) -> Credential:
        self.seen_settings = http.settings if isinstance(http, CredentialHttp) else None
        resp = await http.client().post(
            cred.metadata["token_uri"],
            data={"grant_type": "refresh_token", "refresh_token": cred.metadata["refresh_token"]},
        )
        if resp.status_code != 200:
            raise RuntimeError(f"token endpoint answered HTTP {resp.status_code}")
        body = msgspec.json.decode(resp.content)
        now = time.time()
        meta = {
            **cred.metadata,
            "access_token": body["access_token"],
            "refresh_token": body.get("refresh_token") or cred.metadata["refresh_token"],
            "expired": iso(now + body["expires_in"]),
            "last_refresh": iso(now),
        }
        return msgspec.structs.replace(cred, api_key=body["access_token"], metadata=meta)


class OAuthPlugin:
    """Registers the authenticator and parses ``type: testoauth`` auth files."""

    __name__ = "test-oauth-plugin"

    def __init__(self) -> None:
        self.auth = RefreshingAuth()

    @hookimpl
    def register_authenticators(self, register: AuthenticatorRegistrar) -> None:
        register(self.auth)

    @hookimpl
    def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
        if data.get("type") != PROVIDER:
            return None
        return Credential(
            id=f"{PROVIDER}:{path.name}",
            provider=PROVIDER,
            executor="openai-compat",
            label=str(data.get("email") or ""),
            api_key=data.get("access_token"),
            base_url=data.get("base_url"),
            models=(ModelAlias("oauth-model"),),
            metadata=dict(data),
            source=str(path),
        )


@pytest.fixture
async def oauth() -> AsyncIterator[tuple[FakeOAuthServer, str]]:
    server = FakeOAuthServer(refresh_tokens=["rt-original-1234"])
    async with serve_on_loopback(server) as url:
        yield server, url + "/oauth/token"


def write_auth(directory: Path, token_uri: str, *, expired: float, base_url: str = "http://127.0.0.1:9") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "testoauth-alice.json"
    data = {
        "type": PROVIDER,
        "email": "alice@example.com",
        "access_token": "at-original-secret-5678",
        "refresh_token": "rt-original-1234",
        "expired": iso(expired),
        "token_uri": token_uri,
        "base_url": base_url,
    }
    path.write_bytes(msgspec.json.encode(data))
    return path


def setup(tmp_path: Path, plugin: OAuthPlugin, **kw: Any) -> tuple[Container, TokenRefresher]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auths'}\n")
    container = build_container(cfg, plugins=[plugin])
    runtime = container.runtime()
    options = {"tick": 0.02, "backoff_base": 0.05, **kw}
    return container, TokenRefresher(runtime, {PROVIDER: plugin.auth}, **options)


async def wait_for(cond: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------------------- parsing


def test_expiry_formats() -> None:
    base = 1_750_000_000.0
    assert parse_time(iso(base)) == base
    assert parse_time("2025-06-15T15:06:40.123456789+02:00") == pytest.approx(1749992800.123456)
    assert parse_time(base) == base
    assert parse_time(base * 1000) == base  # epoch milliseconds
    assert parse_time(str(int(base))) == base
    assert parse_time("") is None
    assert parse_time("soon") is None
    assert parse_time(True) is None
    assert token_expiry({"expired": iso(base)}) == base
    assert token_expiry({"expiry": base}) == base
    assert token_expiry({"expires_at": int(base * 1000)}) == base
    assert token_expiry({"token": {"expiry": iso(base)}}) == base
    assert token_expiry({"expires_in": 3600, "timestamp": int(base * 1000)}) == base + 3600
    assert token_expiry({"access_token": "x"}) is None


def test_due_follows_refresh_lead(tmp_path: Path) -> None:
    plugin = OAuthPlugin()
    _, refresher = setup(tmp_path, plugin)
    now = time.time()
    cred = Credential(id="c", provider=PROVIDER, executor="x", metadata={"expired": iso(now + 3600)})
    assert not refresher.due(cred, now)
    assert refresher.due(msgspec.structs.replace(cred, metadata={"expired": iso(now + 120)}), now)
    assert refresher.due(msgspec.structs.replace(cred, metadata={"expired": iso(now - 5)}), now)
    # No expiry: refresh when the last refresh is older than the lead (or was never recorded).
    assert refresher.due(msgspec.structs.replace(cred, metadata={"email": "x"}), now)
    assert not refresher.due(msgspec.structs.replace(cred, metadata={"last_refresh": iso(now - 60)}), now)
    # Config API keys (no metadata) and providers without an authenticator are never refreshed.
    assert not refresher.due(msgspec.structs.replace(cred, metadata={}), now)
    assert not refresher.due(msgspec.structs.replace(cred, provider="other", metadata={"email": "x"}), now)
    plugin.auth.refresh_lead = None
    assert not refresher.due(msgspec.structs.replace(cred, metadata={"expired": iso(now - 5)}), now)


def test_refresh_goes_through_the_credentials_own_proxy() -> None:
    base = HttpClients(default_proxy="http://127.0.0.1:1")
    own = CredentialHttp(base, "http://127.0.0.1:2")
    assert own.client() is base.client("http://127.0.0.1:2")
    assert own.client("http://127.0.0.1:3") is base.client("http://127.0.0.1:3")
    assert CredentialHttp(base, None).client() is base.client()


# ---------------------------------------------------------------------------------------------------- refresh


async def test_scheduled_refresh_persists_rotated_tokens(tmp_path: Path, oauth: tuple[FakeOAuthServer, str]) -> None:
    server, token_uri = oauth
    path = write_auth(tmp_path / "auths", token_uri, expired=time.time() + 60)  # inside the 5 min lead
    plugin = OAuthPlugin()
    container, refresher = setup(tmp_path, plugin)
    pool = container.pool()
    cid = f"{PROVIDER}:{path.name}"
    with capture_logs() as logs:
        refresher.start()
        try:
            await wait_for(lambda: (st := pool.get(cid)) is not None and st.refreshed_at > 0)
        finally:
            await refresher.stop()
    assert len(server.token_requests) == 1
    assert server.token_requests[0].form == {"grant_type": "refresh_token", "refresh_token": "rt-original-1234"}
    issued = server.issued[-1]
    on_disk = msgspec.json.decode(path.read_bytes())
    assert on_disk["access_token"] == issued.access_token
    assert on_disk["refresh_token"] == issued.refresh_token != "rt-original-1234"
    assert on_disk["email"] == "alice@example.com"
    assert token_expiry(on_disk) is not None and token_expiry(on_disk) > time.time() + 600  # type: ignore[operator]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    st = pool.get(cid)
    assert st is not None and st.cred.api_key == issued.access_token
    assert not refresher.due(st.cred)
    assert plugin.auth.seen_settings is container.runtime().settings  # endpoint overrides reach the refresh
    # The watcher would find nothing new: the runtime already knows this content.
    assert container.runtime().reload_auth_files([path]) is None
    assert any(e["event"] == "token refreshed" and e["credential"] == "alice@example.com" for e in logs)
    text = repr(logs)
    for secret in ("rt-original-1234", "at-original-secret-5678", issued.access_token, str(issued.refresh_token)):
        assert secret not in text


async def test_failing_refresh_backs_off_marks_unavailable_and_recovers(
    tmp_path: Path, oauth: tuple[FakeOAuthServer, str]
) -> None:
    server, token_uri = oauth
    server.fail_next(3, status=503, error="temporarily_unavailable")
    path = write_auth(tmp_path / "auths", token_uri, expired=time.time() - 10)
    plugin = OAuthPlugin()
    container, refresher = setup(tmp_path, plugin, max_failures=3)
    pool = container.pool()
    cid = f"{PROVIDER}:{path.name}"
    before = path.read_bytes()
    seen_unavailable = False

    def unavailable() -> bool:
        nonlocal seen_unavailable
        st = pool.get(cid)
        if st is not None and st.unavailable_reason:
            seen_unavailable = True
            assert st.refresh_failures == 3
            assert "HTTP 503" in st.refresh_error
            assert path.read_bytes() == before  # a failed refresh never touches the file
        return seen_unavailable

    with capture_logs() as logs:
        refresher.start()
        try:
            await wait_for(unavailable)
            status = {s["id"]: s for s in pool.status()}[cid]
            assert status["state"] == "unavailable"
            await wait_for(lambda: (st := pool.get(cid)) is not None and not st.unavailable_reason)
        finally:
            await refresher.stop()
    assert len(server.token_requests) == 4
    st = pool.get(cid)
    assert st is not None and st.refresh_failures == 0 and st.cred.api_key == server.issued[-1].access_token
    warnings = [e for e in logs if e["event"] == "token refresh failed"]
    assert len(warnings) == 3 and all(e["log_level"] == "warning" for e in warnings)
    assert [e["failures"] for e in warnings] == [1, 2, 3]
    assert all(e["credential"] == "alice@example.com" for e in warnings)
    assert "rt-original-1234" not in repr(logs) and "at-original-secret-5678" not in repr(logs)


async def test_concurrent_refreshes_share_one_token_request(tmp_path: Path, oauth: tuple[FakeOAuthServer, str]) -> None:
    server, token_uri = oauth
    server.delay = 0.1
    path = write_auth(tmp_path / "auths", token_uri, expired=time.time() + 3600)
    plugin = OAuthPlugin()
    _, refresher = setup(tmp_path, plugin)
    cid = f"{PROVIDER}:{path.name}"
    a, b = await asyncio.gather(refresher.refresh(cid), refresher.refresh(cid))
    assert a is not None and a == b
    assert len(server.token_requests) == 1  # a rotating refresh token is used exactly once


async def test_a_401_refreshes_the_token_once_and_retries(tmp_path: Path, oauth: tuple[FakeOAuthServer, str]) -> None:
    server, token_uri = oauth
    upstream = FakeOpenAIChat(validate=False)
    upstream.key_behaviour["at-original-secret-5678"] = Reply(status=401, error_message="token expired")
    async with serve_on_loopback(upstream) as up_url:
        path = write_auth(tmp_path / "auths", token_uri, expired=time.time() + 3600, base_url=up_url + "/v1")
        config = f"auth-dir: {path.parent}\nrequest-retry: 0\n"
        async with run_proxy(config, plugins=[OAuthPlugin()]) as proxy:
            c = openai.AsyncOpenAI(base_url=proxy.v1, api_key="unused", max_retries=0)
            r = await c.chat.completions.create(model="oauth-model", messages=[{"role": "user", "content": "x"}])
            assert r.choices[0].message.content == "echo: x"
            new = server.issued[-1].access_token
            assert [q.key for q in upstream.requests] == ["at-original-secret-5678", new]
            assert len(server.token_requests) == 1
            assert msgspec.json.decode(path.read_bytes())["access_token"] == new
            # Later requests use the new token directly.
            await c.chat.completions.create(model="oauth-model", messages=[{"role": "user", "content": "y"}])
            assert upstream.requests[-1].key == new
            assert len(server.token_requests) == 1


# ---------------------------------------------------------------------------------------------------- crashes

_WRITER = """
import sys
from pathlib import Path
import msgspec
from cliproxy.credentials_store import atomic_write

path = Path(sys.argv[1])
versions = []
for name in ("old", "new"):
    data = {"type": "testoauth", "version": name, "access_token": name * 4, "padding": name * 60000}
    versions.append(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\\n")
atomic_write(path, versions[0])
print("ready", flush=True)
i = 1
while True:
    atomic_write(path, versions[i % 2])
    i += 1
"""


def test_sigkill_during_token_writes_never_leaves_a_broken_file(tmp_path: Path) -> None:
    """Writers SIGKILLed at random points: every file still parses and is exactly the old or the new version."""
    rng = random.Random()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    paths = [tmp_path / f"testoauth-{i}.json" for i in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(p)], stdout=subprocess.PIPE, env=env) for p in paths]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        for proc in procs:
            time.sleep(rng.uniform(0.0, 0.03))
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    assert all(proc.returncode == -signal.SIGKILL for proc in procs)
    for path in paths:
        data = msgspec.json.decode(path.read_bytes())
        assert data["version"] in ("old", "new")
        assert data["padding"] == data["version"] * 60000
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Temp files a kill left behind are never mistaken for credentials.
    assert not any(is_auth_file(p.name) for p in tmp_path.iterdir() if p not in paths)
