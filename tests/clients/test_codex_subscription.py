"""Real Codex CLI and Claude Code -> cliproxy -> a ChatGPT login -> the fake ChatGPT backend.

A user with a ChatGPT subscription logs in once (``codex-<email>.json`` in auth-dir) and points their tools at
cliproxy with ``gpt-5-codex``. Each client runs as in ``test_real_clients.py`` (fresh ``HOME``, empty cwd,
scrubbed environment, timeout), for a plain prompt and for a shell-tool round trip. The fake backend refuses
anything the real one refuses (no ``instructions``, ``stream``/``store`` wrong, sampling limits, a token it
did not issue, a missing or foreign ``chatgpt-account-id``), so every request it served carried the login's
bearer token and account id in an acceptable body.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cliproxy.testing import Recorded, Reply, ToolCall, serve_in_thread
from cliproxy.testing.proxy import run_proxy
from cliproxy_codex.testing import BACKEND_PREFIX, FakeChatGPTBackend

pytestmark = [pytest.mark.clients, pytest.mark.timeout(900)]

CLIENT_KEY = "sk-cliproxy-client-c0d3"
ACCESS_TOKEN = "chatgpt-access-token-7a1f"
ACCOUNT_ID = "acct-subscriber-42"
MODEL = "gpt-5-codex"
RUN_TIMEOUT = 180.0
CLIENTS = ("codex", "claude")
KINDS = ("prompt", "tool")
PROMPTS = {
    "prompt": "Reply with one short greeting.",
    "tool": "TOOLTEST: run the shell command the test asks for and tell me what it printed.",
}


def tool_outputs(body: Any) -> list[str]:
    items = body.get("input") if isinstance(body, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            output = item.get("output")
            out.append(output if isinstance(output, str) else json.dumps(output))
    return out


def tool_names(body: Any) -> list[str]:
    tools = body.get("tools") if isinstance(body, dict) else None
    return [str(t.get("name")) for t in tools or [] if isinstance(t, dict) and t.get("name")]


@dataclass
class Script:
    """The fake model: greets, or asks for the client's shell tool and then quotes what the command printed."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def command(self) -> str:
        return f"printf 'sub-%s-ok' {self.nonce}"

    @property
    def marker(self) -> str:
        return f"sub-{self.nonce}-ok"

    @property
    def greeting(self) -> str:
        return f"Hello from your ChatGPT plan, greeting {self.nonce}."

    @property
    def final(self) -> str:
        return f"The command printed {self.marker} and that is all."

    def __call__(self, rec: Recorded) -> Reply:
        outputs = "\n".join(tool_outputs(rec.json))
        if outputs:
            return Reply(text=self.final if self.marker in outputs else f"MARKER MISSING: {outputs[:200]!r}")
        if b"TOOLTEST" in rec.body:
            names = tool_names(rec.json)
            if "Bash" in names:
                call = ToolCall("", "Bash", {"command": self.command, "description": "Print a test marker"})
            elif "exec_command" in names:
                call = ToolCall("", "exec_command", {"cmd": self.command})
            elif "shell_command" in names:
                call = ToolCall("", "shell_command", {"command": self.command})
            else:
                return Reply(text=f"NO SHELL TOOL offered; tools were {names}")
            return Reply(tool_calls=[call], reasoning="The user wants the marker printed.")
        return Reply(text=self.greeting, reasoning="A greeting is all that is needed.")


#: Proxies start one at a time: litestar imports optional modules lazily while building the app, and two
#: threads doing that first import at once can see a half-initialised module.
_startup = threading.Lock()


def warm_up() -> None:
    """Build the fake's request validator on the main thread (pydantic's first build is not thread-safe)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fake = FakeChatGPTBackend()
        endpoint = fake.route("POST", BACKEND_PREFIX + "/responses")
        assert endpoint is not None
        sample = {"model": "m", "stream": True, "store": False, "instructions": "i", "input": "hi"}
        fake.check(
            Recorded("POST", BACKEND_PREFIX + "/responses", {}, {}, json.dumps(sample).encode(), sample), endpoint
        )


@contextmanager
def proxy_in_thread(config: str) -> Iterator[str]:
    box: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop = asyncio.Event()
        async with run_proxy(config) as handle:
            box["url"] = handle.url
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="cliproxy-subscription", daemon=True)
    with _startup:
        thread.start()
        started.wait(60)
    if "url" not in box:
        raise RuntimeError("cliproxy did not start") from box.get("error")
    try:
        yield str(box["url"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(15)


def client_command(client: str, kind: str, proxy: str, bin_dir: Path, home: Path, tmp: Path) -> tuple[list[str], dict]:
    node = shutil.which("node")
    path = [str(bin_dir)] + ([str(Path(node).parent)] if node else []) + ["/usr/local/bin", "/usr/bin", "/bin"]
    env = {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TERM": "dumb",
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "TMPDIR": str(tmp),
    }
    prompt = PROMPTS[kind]
    if client == "claude":
        env.update(
            ANTHROPIC_BASE_URL=proxy,
            ANTHROPIC_AUTH_TOKEN=CLIENT_KEY,
            ANTHROPIC_MODEL=MODEL,
            ANTHROPIC_DEFAULT_OPUS_MODEL=MODEL,
            ANTHROPIC_DEFAULT_SONNET_MODEL=MODEL,
            ANTHROPIC_DEFAULT_HAIKU_MODEL=MODEL,
            ANTHROPIC_SMALL_FAST_MODEL=MODEL,
            CLAUDE_CODE_SUBAGENT_MODEL=MODEL,
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            DISABLE_TELEMETRY="1",
            DISABLE_AUTOUPDATER="1",
            DISABLE_ERROR_REPORTING="1",
            DISABLE_BUG_COMMAND="1",
            CLAUDE_CODE_MAX_RETRIES="1",
            API_TIMEOUT_MS="90000",
        )
        argv = [str(bin_dir / "claude"), "-p", prompt, "--model", MODEL, "--output-format", "text"]
        if kind == "tool":
            argv += ["--allowedTools", "Bash(printf:*)"]
        return argv, env
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "cliproxy"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "danger-full-access"\n'
        "check_for_update_on_startup = false\n"
        "[analytics]\n"
        "enabled = false\n"
        "[model_providers.cliproxy]\n"
        'name = "cliproxy"\n'
        f'base_url = "{proxy}/v1"\n'
        'env_key = "CLIPROXY_API_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 1\n"
        "stream_max_retries = 1\n"
        "stream_idle_timeout_ms = 90000\n"
    )
    env.update(CODEX_HOME=str(codex_home), CLIPROXY_API_KEY=CLIENT_KEY)
    argv = [str(bin_dir / "codex"), "exec", "--skip-git-repo-check", "--color", "never", "-o", str(tmp / "last.txt")]
    return [*argv, prompt], env


@dataclass
class Run:
    client: str
    kind: str
    script: Script
    returncode: int | None = None
    output: str = ""
    stderr: str = ""
    timed_out: bool = False
    requests: list[Recorded] = field(default_factory=list)
    served: list[tuple[str, str]] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    validation_errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{self.client} ({self.kind}) exit {self.returncode}{' TIMED OUT' if self.timed_out else ''}\n"
            f"--- output (tail)\n{self.output[-2500:]}\n--- stderr (tail)\n{self.stderr[-2500:]}\n"
            f"--- backend: {len(self.requests)} request(s), served {self.served}, refused {self.rejections}\n"
            f"--- validation errors: {self.validation_errors}"
        )


def run_client(bin_dir: Path, client: str, kind: str) -> Run:
    script = Script()
    run = Run(client, kind, script)
    fake = FakeChatGPTBackend(accounts={ACCESS_TOKEN: ACCOUNT_ID}, handler=script)
    with tempfile.TemporaryDirectory(prefix=f"cliproxy-chatgpt-{client}-{kind}-") as base:
        home, tmp, cwd, auths = (Path(base, d) for d in ("home", "tmp", "cwd", "auths"))
        for d in (home, tmp, cwd, auths):
            d.mkdir()
        login = {
            "id_token": "",
            "access_token": ACCESS_TOKEN,
            "refresh_token": "chatgpt-refresh-token",
            "account_id": ACCOUNT_ID,
            "last_refresh": "2026-01-01T00:00:00Z",
            "email": "subscriber@example.com",
            "type": "codex",
            "expired": "2099-01-01T00:00:00Z",
        }
        (auths / "codex-subscriber@example.com.json").write_text(json.dumps(login))
        with serve_in_thread(fake) as up:
            config = (
                f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auths}\n"
                f"endpoints:\n  codex:\n    api-url: {up}{BACKEND_PREFIX}\n    token-url: {up}/oauth/token\n"
            )
            with proxy_in_thread(config) as proxy:
                argv, env = client_command(client, kind, proxy, bin_dir, home, tmp)
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                try:
                    stdout, run.stderr = proc.communicate(timeout=RUN_TIMEOUT)
                except subprocess.TimeoutExpired:
                    run.timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    stdout, run.stderr = proc.communicate()
                run.returncode = proc.returncode
                last = tmp / "last.txt"
                run.output = stdout + "\n" + (last.read_text() if last.exists() else "")
        run.requests = list(fake.requests)
        run.served = list(fake.served)
        run.rejections = list(fake.rejections)
        run.validation_errors = list(fake.validation_errors)
    return run


@pytest.fixture(scope="module")
def runs(clients_bin: Path) -> Iterator[dict[tuple[str, str], Future[Run]]]:
    warm_up()
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="subscription-run")
    futures = {(c, k): pool.submit(run_client, clients_bin, c, k) for c in CLIENTS for k in KINDS}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", CLIENTS)
def test_client_through_a_chatgpt_login(runs: dict[tuple[str, str], Future[Run]], client: str, kind: str) -> None:
    started = time.monotonic()
    run = runs[(client, kind)].result(timeout=RUN_TIMEOUT * 3)
    info = run.describe()
    assert not run.timed_out, info
    assert run.validation_errors == [] and run.rejections == [], info
    assert run.served and {account for account, _ in run.served} == {ACCOUNT_ID}, info
    assert {model for _, model in run.served} == {MODEL}, info
    for rec in run.requests:
        assert rec.header("authorization") == f"Bearer {ACCESS_TOKEN}", info
        assert rec.header("chatgpt-account-id") == ACCOUNT_ID, info
        assert rec.json["instructions"].strip(), info  # never empty, never pushed into a user turn
    if client == "codex":
        first = run.requests[0]
        # Codex CLI's own prompt (its leading developer message) became the instructions, and its headers
        # reached the backend as Codex CLI would send them there.
        assert first.json["instructions"].startswith("You are"), info
        assert (first.header("originator") or "").startswith("codex_"), info
        assert first.header("session-id") and first.header("x-codex-turn-metadata"), info
    assert run.returncode == 0, info
    if kind == "prompt":
        assert run.script.greeting in run.output, info
    else:
        assert any(run.script.marker in "\n".join(tool_outputs(r.json)) for r in run.requests), info
        assert run.script.final in run.output, info
    assert time.monotonic() - started < RUN_TIMEOUT * 3
