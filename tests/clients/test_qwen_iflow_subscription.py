"""Qwen Code and iFlow subscriptions, end to end, as a new user would use them.

1. ``cliproxy login qwen --no-browser --alias ...`` and ``cliproxy login iflow --no-browser`` run as real
   subprocesses against the fake Qwen and iFlow servers; the printed URL is approved (Qwen's device page) or
   followed (iFlow's consent redirect to the local callback), and each writes its reference-schema file.
2. cliproxy serves those files; Claude Code and Codex CLI (real binaries) and the ``openai`` SDK ask for
   ``qwen3-coder-plus`` (Qwen) and ``kimi-k2`` (iFlow): a plain prompt, and a tool round trip in which the
   client really runs the shell command the fake model asks for.
3. The fakes check every call: Qwen gets the login's access token and Qwen Code's headers, iFlow the API key
   ``getUserInfo`` handed out and iFlow CLI's ``User-Agent``; both validate the Chat Completions bodies.

The client harness (environment, commands, the scripted fake model) is the one of ``test_real_clients.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import httpx
import openai
import pytest

from cliproxy.testing import Recorded, Reply, ToolCall
from cliproxy.testing.browser import follow_login_url
from cliproxy_iflow.testing import FakeIFlow, iflow_endpoints
from cliproxy_qwen.testing import FakeQwen, qwen_endpoints

pytestmark = [pytest.mark.clients, pytest.mark.timeout(900)]


def _harness() -> ModuleType:
    """``test_real_clients.py`` as a plain module: its client commands, scripted model and proxy thread."""
    name = "_cliproxy_real_clients_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("test_real_clients.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


rc = _harness()
BIN = Path(sys.executable).parent / "cliproxy"
CLIENT_KEY: str = rc.CLIENT_KEY
WORKERS = min(rc.WORKERS, 4)
CLIENTS = ("claude", "codex")
KINDS = ("prompt", "tool")
MODELS = {"qwen": "qwen3-coder-plus", "iflow": "kimi-k2"}


# ---------------------------------------------------------------------------------------------------------
# Step 1: the logins, as real subprocesses.


class Login:
    """A ``cliproxy login`` subprocess whose stdout is read line by line without blocking."""

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
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("http"):
                return line.strip()
        self.proc.send_signal(signal.SIGINT)
        raise AssertionError(f"no login URL printed: {self.proc.communicate(timeout=10)[1]}")

    def finish(self) -> str:
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Account:
    provider: str
    path: Path
    data: dict[str, Any]

    @property
    def bearer(self) -> str:
        """What the upstream must see: Qwen's access token, iFlow's API key."""
        return str(self.data["access_token"] if self.provider == "qwen" else self.data["api_key"])


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Account]:
    base = tmp_path_factory.mktemp("subscription-logins")
    out: dict[str, Account] = {}
    qwen, iflow = FakeQwen(interval=0.2), FakeIFlow(email="ann@example.com")
    with qwen.serve_in_thread() as qwen_url, iflow.serve_in_thread() as iflow_url:
        cfg = base / "config.yaml"
        iflow_block = iflow_endpoints(iflow_url).removeprefix("endpoints:\n")
        cfg.write_text(f"auth-dir: {base / 'auth'}\n{qwen_endpoints(qwen_url)}{iflow_block}")

        login = Login(["login", "qwen", "--no-browser", "--alias", "ann", "--config", str(cfg)])
        assert httpx.get(login.url()).status_code == 200  # the user approves the device
        login.finish()
        login = Login(["login", "iflow", "--no-browser", "--callback-port", str(_free_port()), "--config", str(cfg)])
        assert follow_login_url(login.url()).status_code == 200  # the user consents; the browser comes back
        login.finish()
        assert qwen.problems == [] and iflow.problems == []
    for provider, name in (("qwen", "qwen-ann.json"), ("iflow", "iflow-ann@example.com.json")):
        path = base / "auth" / name
        out[provider] = Account(provider, path, json.loads(path.read_text()))
    assert out["qwen"].data["type"] == "qwen" and out["iflow"].data["api_key"] == iflow.api_key
    return out


# ---------------------------------------------------------------------------------------------------------
# Step 2: a fake upstream that knows the logged-in account, and cliproxy serving that account's file.


def make_fake(account: Account, script: Any) -> FakeQwen | FakeIFlow:
    if account.provider == "qwen":
        qwen = FakeQwen()
        qwen.seed_tokens(account.bearer, str(account.data["refresh_token"]), expires_in=6 * 3600)
        qwen.chat.handler = script
        return qwen
    iflow = FakeIFlow(email=str(account.data["email"]), api_key=account.bearer)
    iflow.seed_tokens(str(account.data["access_token"]), str(account.data["refresh_token"]), expires_in=48 * 3600)
    iflow.chat.handler = script
    return iflow


def proxy_config(account: Account, upstream_url: str, auth_dir: Path) -> str:
    auth_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(account.path, auth_dir / account.path.name)
    if account.provider == "qwen":
        # The file's resource_url names the login-time server; api-url sends chat to this run's fake instead.
        endpoints = qwen_endpoints(upstream_url) + f"    api-url: {upstream_url}/v1\n"
    else:
        endpoints = iflow_endpoints(upstream_url)
    return f"api-keys: [{CLIENT_KEY}]\nauth-dir: {auth_dir}\n{endpoints}"


@dataclass
class Outcome:
    run: Any
    requests: list[Recorded]
    problems: list[str]


def run_client(bin_dir: Path, account: Account, client: str, kind: str) -> Outcome:
    model = MODELS[account.provider]
    script = rc.Script("openai", secrets.token_hex(4))
    run = rc.Run(client, account.provider, kind, script)
    fake = make_fake(account, script)
    with tempfile.TemporaryDirectory(prefix=f"cliproxy-{client}-{account.provider}-{kind}-") as tmp_base:
        home, tmp, cwd = (Path(tmp_base, d) for d in ("home", "tmp", "cwd"))
        for d in (home, tmp, cwd):
            d.mkdir()
        with (
            fake.serve_in_thread() as up_url,
            rc.proxy_in_thread(proxy_config(account, up_url, Path(tmp_base, "auth"))) as proxy_url,
        ):
            argv, env = rc.client_command(client, kind, model, proxy_url, bin_dir, home, tmp)
            started = time.monotonic()
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
                run.stdout, run.stderr = proc.communicate(timeout=rc.RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                run.timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                run.stdout, run.stderr = proc.communicate()
            run.seconds = time.monotonic() - started
            run.returncode = proc.returncode
            last = tmp / "last.txt"
            if last.exists():
                run.last_message = last.read_text()
    run.requests = [r for r in fake.chat_requests if r.method == "POST"]
    run.validation_errors = list(fake.problems)
    return Outcome(run, run.requests, run.validation_errors)


class Runs:
    def __init__(self, bin_dir: Path, accounts: dict[str, Account], wanted: list[tuple[str, str, str]]) -> None:
        self.bin_dir, self.accounts = bin_dir, accounts
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="subscription-run")
        self.futures: dict[tuple[str, str, str], Future[Outcome]] = {}
        for key in wanted:
            self._submit(key)

    def _submit(self, key: tuple[str, str, str]) -> None:
        client, provider, kind = key
        self.futures[key] = self.pool.submit(run_client, self.bin_dir, self.accounts[provider], client, kind)

    def get(self, client: str, provider: str, kind: str) -> Outcome:
        key = (client, provider, kind)
        if key not in self.futures:
            self._submit(key)
        return self.futures[key].result(timeout=rc.RUN_TIMEOUT * (1 + len(self.futures) / WORKERS) + 60)


@pytest.fixture(scope="module")
def runs(clients_bin: Path, accounts: dict[str, Account], request: pytest.FixtureRequest) -> Iterator[Runs]:
    wanted: list[tuple[str, str, str]] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if isinstance(item, pytest.Function) and item.module is request.module and callspec is not None:
            p = callspec.params
            if "client" in p:
                wanted.append((p["client"], p["provider"], p["kind"]))
    rc.warm_up()
    pool = Runs(clients_bin, accounts, list(dict.fromkeys(wanted)))
    yield pool
    pool.pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------------
# Step 3: what every run must show.


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("client", CLIENTS)
def test_real_client_on_a_subscription(
    runs: Runs, accounts: dict[str, Account], client: str, provider: str, kind: str
) -> None:
    outcome = runs.get(client, provider, kind)
    run = outcome.run
    info = run.describe()
    assert outcome.requests, "the upstream saw no chat request\n" + info
    assert {r.model for r in outcome.requests} == {MODELS[provider]}, info
    assert {r.key for r in outcome.requests} == {accounts[provider].bearer}, info
    if provider == "qwen":
        assert all(r.header("x-dashscope-authtype") == "qwen-oauth" for r in outcome.requests), info
    else:
        assert all(r.header("user-agent") == "iFlow-Cli" for r in outcome.requests), info
    check(run)


def check(run: Any) -> None:
    """No validation errors, then the greeting, or the tool round trip carrying the command's real output."""
    script, info = run.script, run.describe()
    assert not run.timed_out, info
    assert run.validation_errors == [], info
    printed = run.stdout + "\n" + run.last_message
    if run.kind == "prompt":
        assert run.returncode == 0, info
        assert script.greeting in printed, info
        return
    with_results = [r for r in run.requests if rc.tool_results("openai", r.json)]
    assert with_results, "no request carried a tool result back to the upstream\n" + info
    seen = "\n".join(rc.tool_results("openai", with_results[0].json))
    assert script.tool_output in seen, f"tool result without the command's output: {seen[:500]!r}\n{info}"
    assert run.returncode == 0, info
    assert script.final in printed, info


@pytest.mark.parametrize("provider", list(MODELS))
def test_openai_sdk_on_a_subscription(accounts: dict[str, Account], provider: str) -> None:
    account = accounts[provider]
    model = MODELS[provider]
    replies = [
        Reply(text="Hello from the subscription."),
        Reply(tool_calls=[ToolCall("call_1", "lookup", {"q": "cliproxy"})]),
        Reply(text="Found it."),
    ]
    fake = make_fake(account, lambda _rec: replies.pop(0))
    tool: Any = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    with (
        tempfile.TemporaryDirectory() as base,
        fake.serve_in_thread() as up_url,
        rc.proxy_in_thread(proxy_config(account, up_url, Path(base, "auth"))) as proxy_url,
    ):
        client = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key=CLIENT_KEY, max_retries=0)
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == "Hello from the subscription."
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "find"}],
            tools=[tool],
            stream=True,
        )
        calls = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls[0].function is not None and calls[0].function.name == "lookup"
        messages: list[Any] = [
            {"role": "user", "content": "find"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "result"},
        ]
        final = client.chat.completions.create(model=model, messages=messages, tools=[tool])
        assert final.choices[0].message.content == "Found it."
    assert {r.key for r in fake.chat_requests} == {account.bearer}
    assert fake.problems == []
