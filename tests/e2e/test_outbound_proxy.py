"""Global and per-key ``proxy-url`` through real http, https and socks5 proxy servers."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
import trustme
from dependency_injector import providers

from cliproxy.http import HttpClients
from cliproxy.testing import FakeOpenAIChat, Reply, serve_on_loopback
from cliproxy.testing.proxy import build_container, run_proxy

KEY = "sk-client-proxy-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pproxy(scheme: str, tmp: Path, ca: trustme.CA | None = None) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp / f"pproxy-{port}.log"
    # pproxy picks uvloop when installed and then fails to find a loop; run it on plain asyncio.
    boot = (
        "import sys, asyncio; sys.modules['uvloop'] = None; asyncio.set_event_loop(asyncio.new_event_loop()); "
        "from pproxy.server import main; sys.argv[0] = 'pproxy'; main()"
    )
    args = [sys.executable, "-c", boot, "-l", f"{scheme}://127.0.0.1:{port}", "-v"]
    if ca is not None:
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "proxy.pem"))
        args += ["--ssl", str(tmp / "proxy.pem")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"pproxy did not start: {log.read_text()}") from None
                time.sleep(0.05)
        public = "https" if scheme.endswith("+ssl") else scheme
        yield f"{public}://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAIChat, str]]:
    app = FakeOpenAIChat()
    async with serve_on_loopback(app) as url:
        yield app, url


def config(upstream_url: str, global_proxy: str = "", key_proxy: str = "") -> str:
    return (
        f"api-keys: [{KEY}]\n"
        f"proxy-url: {global_proxy!r}\n"
        "openai-compatibility:\n"
        "  - name: up\n"
        f"    base-url: {upstream_url}/v1\n"
        "    api-key-entries:\n"
        f"      - api-key: k1\n        proxy-url: {key_proxy!r}\n"
        "    models:\n      - name: m-up\n        alias: m\n"
    )


async def ask(url: str, stream: bool = False) -> str:
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as c:
        if stream:
            s = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
            return "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])
        r = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        return r.choices[0].message.content or ""


async def wait_for_log(log: Path, needle: str) -> str:
    """pproxy logs each tunnelled connection; the log shows which proxy carried the upstream call."""
    for _ in range(100):
        text = await asyncio.to_thread(log.read_text, errors="replace")
        if needle in text:
            return text
        await asyncio.sleep(0.02)
    return await asyncio.to_thread(log.read_text, errors="replace")


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_global_proxy(scheme: str, upstream: tuple[FakeOpenAIChat, str], tmp_path: Path) -> None:
    fake, url = upstream
    port = url.rsplit(":", 1)[1]
    with pproxy(scheme, tmp_path) as (proxy_url, log):
        fake.script(Reply(text="via proxy"), Reply(text="streamed via proxy"))
        async with run_proxy(config(url, global_proxy=proxy_url)) as h:
            assert await ask(h.url) == "via proxy"
            assert await ask(h.url, stream=True) == "streamed via proxy"
        assert f":{port}" in await wait_for_log(log, f":{port}")


async def test_per_key_proxy_wins_over_global(upstream: tuple[FakeOpenAIChat, str], tmp_path: Path) -> None:
    _, url = upstream
    port = url.rsplit(":", 1)[1]
    with pproxy("http", tmp_path) as (global_url, global_log), pproxy("socks5", tmp_path) as (key_url, key_log):
        async with run_proxy(config(url, global_proxy=global_url, key_proxy=key_url)) as h:
            assert await ask(h.url)
        assert f":{port}" in await wait_for_log(key_log, f":{port}")
        assert f":{port}" not in global_log.read_text(errors="replace")


async def test_https_proxy_with_private_ca(upstream: tuple[FakeOpenAIChat, str], tmp_path: Path) -> None:
    _, url = upstream
    port = url.rsplit(":", 1)[1]
    ca = trustme.CA()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with pproxy("http+ssl", tmp_path, ca) as (proxy_url, log):
        assert proxy_url.startswith("https://")
        cfg = tmp_path / "cfg"
        cfg.mkdir()
        (cfg / "config.yaml").write_text(f"auth-dir: {str(tmp_path / 'auths')!r}\n" + config(url, key_proxy=proxy_url))
        container = build_container(cfg / "config.yaml")
        container.http.override(providers.Singleton(HttpClients, verify=ctx))
        async with run_proxy("", container=container) as h:
            assert await ask(h.url, stream=True)
        assert f":{port}" in await wait_for_log(log, f":{port}")


async def test_unreachable_proxy_is_a_clean_502(upstream: tuple[FakeOpenAIChat, str]) -> None:
    _, url = upstream
    async with run_proxy(config(url, key_proxy=f"socks5://127.0.0.1:{free_port()}")) as h:
        async with openai.AsyncOpenAI(base_url=h.v1, api_key=KEY, max_retries=0) as c:
            with pytest.raises(openai.APIStatusError) as exc:
                await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert exc.value.status_code == 502
        assert "Traceback" not in str(exc.value)
