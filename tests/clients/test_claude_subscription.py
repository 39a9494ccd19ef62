"""Real Claude Code -> ``cliproxy serve`` -> a Claude Code subscription account (fake Anthropic on 127.0.0.1).

As a user sets it up: a CLIProxyAPI ``claude-<email>.json`` in auth-dir whose access token has expired,
``endpoints.claude`` pointing at the fake Anthropic OAuth and Messages servers, ``cliproxy serve`` as a
subprocess, and Claude Code (``-p``) with ``ANTHROPIC_BASE_URL`` at the proxy. The upstream must see the
refreshed token as ``Authorization: Bearer`` (never ``x-api-key``), the ``oauth-2025-04-20`` beta next to
Claude Code's own betas, and Claude Code's system prompt as Claude Code wrote it (its identity line once).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cliproxy.testing import Recorded, Reply, ToolCall
from cliproxy_claude.claude_code import has_identity
from cliproxy_claude.testing import FakeAnthropicOAuth, FakeClaudeSubscription

pytestmark = [pytest.mark.clients, pytest.mark.timeout(600)]

CLIENT_KEY = "sk-cliproxy-client-claude-sub"
MODEL = "claude-sonnet-4-5-20250929"
RUN_TIMEOUT = 180.0
BIN = Path(sys.executable).parent / "cliproxy"
IDENTITY_PREFIXES = ("You are Claude Code", "You are a Claude agent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def texts(system: Any) -> list[str]:
    if isinstance(system, str):
        return [system]
    return [b.get("text", "") for b in system or [] if isinstance(b, dict)]


class Model:
    """The fake model: greets, or asks for a ``printf`` through Claude Code's Bash tool and quotes its output."""

    def __init__(self) -> None:
        self.marker = f"tool-{os.getpid()}-ok"

    def __call__(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        for msg in body.get("messages") or []:
            for block in msg.get("content") if isinstance(msg.get("content"), list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    seen = json.dumps(block.get("content"))
                    return Reply(text=f"The command printed {self.marker}." if self.marker in seen else "MISSING")
        if b"TOOLTEST" in rec.body:
            command = f"printf 'tool-%s-ok' {os.getpid()}"
            return Reply(tool_calls=[ToolCall("", "Bash", {"command": command, "description": "Print a marker"})])
        return Reply(text="Hello from a Claude subscription.")


class Stack:
    def __init__(self, base: Path, oauth: FakeAnthropicOAuth, api: FakeClaudeSubscription, proxy: str) -> None:
        self.base, self.oauth, self.api, self.proxy = base, oauth, api, proxy
        self.auth_file = base / "auth" / "claude-ada@example.com.json"

    def claude(self, bin_dir: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
        home, tmp, cwd = (Path(tempfile.mkdtemp(prefix=p, dir=self.base)) for p in ("home-", "tmp-", "cwd-"))
        node = shutil.which("node")
        path = [str(bin_dir)] + ([str(Path(node).parent)] if node else []) + ["/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "PATH": os.pathsep.join(dict.fromkeys(path)),
            "HOME": str(home),
            "TERM": "dumb",
            "LANG": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            "TMPDIR": str(tmp),
            "ANTHROPIC_BASE_URL": self.proxy,
            "ANTHROPIC_AUTH_TOKEN": CLIENT_KEY,
            "ANTHROPIC_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_OPUS_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_SONNET_MODEL": MODEL,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
            "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
            "CLAUDE_CODE_SUBAGENT_MODEL": MODEL,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_MAX_RETRIES": "1",
            "API_TIMEOUT_MS": "90000",
        }
        argv = [str(bin_dir / "claude"), "-p", prompt, "--model", MODEL, "--output-format", "text", *extra]
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    oauth = FakeAnthropicOAuth(email="ada@example.com")
    api = FakeClaudeSubscription(oauth, handler=Model())
    oauth.add_refresh_token("sk-ant-ort01-ada")
    with tempfile.TemporaryDirectory(prefix="cliproxy-claude-sub-") as tmp, oauth.serve_in_thread() as o_url, \
            api.serve_in_thread() as a_url:  # fmt: skip
        base = Path(tmp)
        (base / "auth").mkdir()
        expired = datetime.fromtimestamp(time.time() - 600).astimezone().isoformat()
        (base / "auth" / "claude-ada@example.com.json").write_text(
            json.dumps(
                {
                    "id_token": "",
                    "access_token": "sk-ant-oat01-ada-expired",
                    "refresh_token": "sk-ant-ort01-ada",
                    "last_refresh": expired,
                    "email": "ada@example.com",
                    "type": "claude",
                    "expired": expired,
                }
            )
        )
        port = free_port()
        (base / "config.yaml").write_text(
            "host: 127.0.0.1\n"
            f"port: {port}\n"
            f"api-keys: [{CLIENT_KEY}]\n"
            f"auth-dir: {base / 'auth'}\n"
            "endpoints:\n"
            "  claude:\n"
            f"    token-url: {o_url}/v1/oauth/token\n"
            f"    api-url: {a_url}\n"
        )
        log = (base / "cliproxy.log").open("w")
        server = subprocess.Popen(
            [str(BIN), "serve", "--config", str(base / "config.yaml")], stdout=log, stderr=subprocess.STDOUT
        )
        proxy = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    httpx.get(f"{proxy}/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=2)
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError("cliproxy serve did not start") from None
                    time.sleep(0.2)
            yield Stack(base, oauth, api, proxy)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def check_upstream_saw_oauth(stack: Stack, run: subprocess.CompletedProcess[str]) -> list[Recorded]:
    info = f"exit {run.returncode}\nstdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}"
    calls = [r for r in stack.api.requests if r.path.startswith("/v1/messages")]
    assert calls, "the upstream saw no Messages call\n" + info
    assert stack.api.validation_errors == [], info
    fresh = stack.oauth.issued[0].access_token if stack.oauth.issued else None
    assert fresh is not None, "the expired token was never refreshed\n" + info
    for rec in calls:
        if rec.key != fresh:
            continue  # the expired token, tried once before the refresh, is answered 401 and not counted
        assert rec.header("authorization") == f"Bearer {fresh}" and rec.header("x-api-key") is None, info
        betas = (rec.header("anthropic-beta") or "").split(",")
        assert "oauth-2025-04-20" in betas and "claude-code-20250219" in betas, info
        assert betas.count("oauth-2025-04-20") == 1, info
        assert rec.header("user-agent", "").startswith("claude-cli/"), info
        system = texts(rec.json.get("system"))
        assert has_identity(rec.json.get("system")), info
        assert sum(t.startswith(IDENTITY_PREFIXES) for t in system) == 1, system[:3]
        assert rec.model == MODEL
    assert [r for r in calls if r.key == fresh], info
    assert json.loads(stack.auth_file.read_text())["access_token"] == fresh
    return calls


def test_claude_code_prompt_through_a_refreshed_subscription(clients_bin: Path, stack: Stack) -> None:
    run = stack.claude(clients_bin, "Reply with one short greeting.")
    check_upstream_saw_oauth(stack, run)
    assert run.returncode == 0 and "Hello from a Claude subscription." in run.stdout, run.stderr[-2000:]
    assert [r.grant_type for r in stack.oauth.issued] == ["refresh_token"]


def test_claude_code_tool_round_trip_over_the_subscription(clients_bin: Path, stack: Stack) -> None:
    stack.api.reset()
    run = stack.claude(
        clients_bin,
        "TOOLTEST: run the shell command the test asks for and tell me what it printed.",
        "--allowedTools",
        "Bash(printf:*)",
    )
    check_upstream_saw_oauth(stack, run)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"The command printed tool-{os.getpid()}-ok." in run.stdout, run.stdout[-2000:]
