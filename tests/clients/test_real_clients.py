"""The real CLIs (Claude Code, Gemini CLI, Codex CLI) -> cliproxy -> a fake upstream of every dialect.

Each client runs as a user runs it (as the real-clients reference describes): a fresh ``HOME``, an empty cwd, a
scrubbed environment (``PATH``, ``HOME``, ``TERM=dumb``, ``LANG``, ``NO_PROXY``, ``TMPDIR`` plus the
variables that point the client at cliproxy), and a timeout. For every client x upstream pair:

* ``prompt``: a plain prompt completes and the client prints the upstream's scripted text;
* ``tool``: the upstream first asks for a shell command (``printf``) through the client's own shell tool,
  the client really runs it, and once the command's output comes back in the next request the upstream
  answers with final text quoting it; the output must reach the upstream and the final text be printed.

A run needs nothing from the others, so every selected run starts in a thread pool when the first test asks
for its result; each test then waits for its own run. Every run gets its own fake upstream and its own
cliproxy (``run_proxy``) on loopback.
"""

from __future__ import annotations

import asyncio
import importlib
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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cliproxy.testing import (
    FakeClaude,
    FakeGemini,
    FakeOpenAIChat,
    FakeOpenAIResponses,
    FakeUpstream,
    Recorded,
    Reply,
    ToolCall,
    serve_in_thread,
)
from cliproxy.testing.fakes import Endpoint
from cliproxy.testing.proxy import run_proxy

pytestmark = [pytest.mark.clients, pytest.mark.timeout(900)]

CLIENT_KEY = "sk-cliproxy-client-7f3a"
UPSTREAM_KEY = "up-key-5c1e"
#: Per run; generous because the CI box may be slow, far above what a healthy run takes.
RUN_TIMEOUT = 180.0
#: Runs in flight at once; the CLIs mostly wait on each other, Gemini CLI's start-up is CPU-bound.
WORKERS = int(os.environ.get("CLIPROXY_CLIENT_WORKERS", "6"))

CLIENTS = ("claude", "gemini", "gemini-ca", "codex")
UPSTREAMS = ("openai", "responses", "claude", "gemini")
KINDS = ("prompt", "tool")

# ---------------------------------------------------------------------------------------------------------
# Known cliproxy bugs: (client, upstream, kind) -> Bug. Marked xfail(strict=True, raises=AssertionError) so the
# suite stays green while a bug is open and turns red as soon as it is fixed (then delete the entry). A known-bug
# run must fail with its own symptom (``signature`` in the upstream's validation errors); failing any other way
# raises KnownBugChanged, which the xfail does not cover.


@dataclass(frozen=True)
class Bug:
    signature: str
    reason: str


class KnownBugChanged(Exception):
    """A combination marked as a known bug failed, but not with the bug's symptom."""


KNOWN_BUGS: dict[tuple[str, str, str], Bug] = {}


class CodexTolerantResponses(FakeOpenAIResponses):
    """FakeOpenAIResponses that accepts the fields Codex CLI 0.169 really sends to OpenAI.

    The openai SDK's request types (which the fake validates against, unknown keys forbidden) lack a few
    fields that Codex sends and OpenAI accepts: top-level ``client_metadata``, an ``id`` on ``message`` and
    ``function_call_output`` input items, and ``content: null`` on ``reasoning`` items. Only those are
    dropped from a copy before validating; everything else is still checked.
    """

    def route(self, method: str, path: str) -> Endpoint | None:
        endpoint = super().route(method, path)
        if endpoint is None or endpoint.validate is None:
            return endpoint
        strict = endpoint.validate

        def validate(rec: Recorded) -> str | None:
            body = json.loads(rec.body)
            if isinstance(body, dict):
                body.pop("client_metadata", None)
                items = body.get("input")
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict) and item.get("type") in ("message", "function_call_output"):
                        item.pop("id", None)
                    if isinstance(item, dict) and item.get("type") == "reasoning" and item.get("content") is None:
                        item.pop("content", None)
            return strict(Recorded(rec.method, rec.path, rec.query, rec.headers, rec.body, body, rec.form, rec.key))

        return Endpoint(endpoint.render, validate, endpoint.scripted, endpoint.auth)


# ---------------------------------------------------------------------------------------------------------
# Upstreams: the fake, the config section that points cliproxy at it, the model name clients use.


@dataclass(frozen=True)
class Upstream:
    name: str
    make: Callable[[Callable[[Recorded], Reply]], FakeUpstream]
    config: Callable[[str], str]
    #: What the clients ask for.
    model: str
    #: What cliproxy must ask the upstream for (aliases resolved).
    upstream_model: str

    def model_of(self, rec: Recorded) -> str | None:
        if self.name == "gemini":  # the model travels in the path: /v1beta/models/<m>:<method>
            return rec.path.rsplit("/", 1)[-1].split(":", 1)[0]
        return rec.model


UPSTREAM_SPECS: dict[str, Upstream] = {
    "openai": Upstream(
        "openai",
        lambda h: FakeOpenAIChat(keys=[UPSTREAM_KEY], handler=h),
        lambda url: (
            "openai-compatibility:\n"
            "  - name: fakechat\n"
            f"    base-url: {url}/v1\n"
            "    api-key-entries:\n"
            f"      - api-key: {UPSTREAM_KEY}\n"
            "    models:\n"
            "      - name: upstream-chat-model\n"
            "        alias: compat-model\n"
        ),
        "compat-model",
        "upstream-chat-model",
    ),
    "responses": Upstream(
        "responses",
        lambda h: CodexTolerantResponses(prefixes=("/v1",), keys=[UPSTREAM_KEY], handler=h),
        lambda url: f"codex-api-key:\n  - api-key: {UPSTREAM_KEY}\n    base-url: {url}/v1\n",
        "gpt-5",
        "gpt-5",
    ),
    "claude": Upstream(
        "claude",
        lambda h: FakeClaude(keys=[UPSTREAM_KEY], handler=h),
        lambda url: f"claude-api-key:\n  - api-key: {UPSTREAM_KEY}\n    base-url: {url}\n",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
    ),
    "gemini": Upstream(
        "gemini",
        lambda h: FakeGemini(keys=[UPSTREAM_KEY], handler=h),
        lambda url: f"gemini-api-key:\n  - api-key: {UPSTREAM_KEY}\n    base-url: {url}\n",
        "gemini-2.5-flash",
        "gemini-2.5-flash",
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Reading what the upstream received, per dialect.


def _text(value: Any) -> str:
    """Every string inside ``value`` (tool results are strings or lists of text blocks, depending)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    return ""


def tool_results(dialect: str, body: Any) -> list[str]:
    """The tool results the request carries, as text."""
    if not isinstance(body, dict):
        return []
    out: list[str] = []
    if dialect == "openai":
        out = [_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool"]
    elif dialect == "responses":
        items = body.get("input")
        outputs = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        out = [_text(i.get("output")) for i in outputs if i.get("type") == "function_call_output"]
    elif dialect == "claude":
        for m in body.get("messages") or []:
            content = m.get("content")
            if isinstance(content, list):
                blocks = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
                out += [_text(b.get("content")) for b in blocks]
    elif dialect == "gemini":
        for c in body.get("contents") or []:
            for p in c.get("parts") or []:
                if isinstance(p, dict) and "functionResponse" in p:
                    out.append(_text(p["functionResponse"]))
    return out


def tool_names(dialect: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    tools = body.get("tools") or []
    if dialect == "openai":
        return [str((t.get("function") or {}).get("name")) for t in tools]
    if dialect in ("responses", "claude"):
        return [str(t.get("name")) for t in tools if t.get("name")]
    if dialect == "gemini":
        return [str(d.get("name")) for t in tools for d in t.get("functionDeclarations") or []]
    return []


def shell_call(names: list[str], command: str) -> ToolCall | None:
    """The call of whichever shell tool the client offers (Claude Code, Gemini CLI, Codex in that order)."""
    if "Bash" in names:
        return ToolCall("", "Bash", {"command": command, "description": "Print a test marker"})
    if "run_shell_command" in names:
        return ToolCall("", "run_shell_command", {"command": command, "description": "Print a test marker"})
    if "exec_command" in names:
        return ToolCall("", "exec_command", {"cmd": command})
    if "shell_command" in names:
        return ToolCall("", "shell_command", {"command": command})
    if "shell" in names:
        return ToolCall("", "shell", {"command": ["bash", "-lc", command]})
    return None


@dataclass
class Script:
    """The fake model's behaviour for one run; stateless, it decides from each request alone."""

    dialect: str
    nonce: str

    @property
    def command(self) -> str:
        # The output (``tool-<nonce>-ok``) does not occur in the command text, so seeing it proves a real run.
        return f"printf 'tool-%s-ok' {self.nonce}"

    @property
    def tool_output(self) -> str:
        return f"tool-{self.nonce}-ok"

    @property
    def greeting(self) -> str:
        return f"Hello from the fake {self.dialect} upstream, greeting {self.nonce}."

    @property
    def final(self) -> str:
        return f"The command printed {self.tool_output} and that is all."

    def __call__(self, rec: Recorded) -> Reply:
        results = tool_results(self.dialect, rec.json)
        if results:
            seen = "\n".join(results)
            if self.tool_output in seen:
                return Reply(text=self.final)
            return Reply(text=f"MARKER MISSING from tool result: {seen[:300]!r}")
        if b"TOOLTEST" in rec.body:
            names = tool_names(self.dialect, rec.json)
            call = shell_call(names, self.command)
            if call is None:
                return Reply(text=f"NO SHELL TOOL offered; tools were {names}")
            return Reply(tool_calls=[call])
        return Reply(text=self.greeting)


# ---------------------------------------------------------------------------------------------------------
# cliproxy on a background thread (run_proxy is async; the clients are subprocesses we wait on).


#: Proxies start one at a time: litestar imports optional plugins lazily while building the app, and two
#: threads doing that first import at once can see a half-initialised module.
_startup = threading.Lock()


def warm_up() -> None:
    """Import on the main thread what the fakes and cliproxy otherwise import lazily from server threads."""
    for module in (
        "anthropic.types.beta.message_count_tokens_params",
        "anthropic.types.beta.message_create_params",
        "anthropic.types.message_count_tokens_params",
        "anthropic.types.message_create_params",
        "google.genai.types",
        "openai.types.chat.completion_create_params",
        "openai.types.responses.response_create_params",
    ):
        importlib.import_module(module)
    # The fakes build (and cache) their pydantic validators on first use inside warnings.catch_warnings(),
    # which is not thread-safe; build them here so server threads only ever read the cache.
    user = {"role": "user", "content": "hi"}
    gemini_body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
        "tools": [{"functionDeclarations": []}],
        "generationConfig": {"temperature": 1},
        "toolConfig": {},
        "safetySettings": [],
    }
    probes: list[tuple[FakeUpstream, str, dict[str, str], dict[str, Any]]] = [
        (FakeOpenAIChat(), "/v1/chat/completions", {}, {"model": "m", "stream": True, "messages": [user]}),
        (CodexTolerantResponses(), "/v1/responses", {}, {"model": "m", "stream": True, "input": "hi"}),
        (FakeGemini(), "/v1beta/models/m:streamGenerateContent", {"alt": "sse"}, gemini_body),
    ]
    for beta in ("true", ""):
        for stream in (True, False):
            body = {"model": "m", "max_tokens": 1, "stream": stream, "messages": [user]}
            probes.append((FakeClaude(), "/v1/messages", {"beta": beta} if beta else {}, body))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fake, path, query, body in probes:
            endpoint = fake.route("POST", path)
            assert endpoint is not None, path
            raw = json.dumps(body).encode()
            fake.check(Recorded("POST", path, query, {}, raw, body), endpoint)


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

    thread = threading.Thread(target=run, name="cliproxy-under-test", daemon=True)
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


# ---------------------------------------------------------------------------------------------------------
# Running a client.


@dataclass
class Run:
    client: str
    upstream: str
    kind: str
    script: Script
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    last_message: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    requests: list[Recorded] = field(default_factory=list)
    validation_errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"{self.client} -> cliproxy -> {self.upstream} ({self.kind}): exit {self.returncode}"
            f"{' (TIMED OUT)' if self.timed_out else ''} after {self.seconds:.1f}s",
            f"--- stdout (tail)\n{self.stdout[-2500:]}",
            f"--- stderr (tail)\n{self.stderr[-2500:]}",
            f"--- upstream saw {len(self.requests)} request(s): "
            + ", ".join(f"{r.method} {r.path}" for r in self.requests),
        ]
        if self.validation_errors:
            lines.append("--- upstream validation errors:\n" + "\n".join(self.validation_errors))
        return "\n".join(lines)


PROMPTS = {
    "prompt": "Reply with one short greeting.",
    "tool": "TOOLTEST: run the shell command the test asks for and tell me what it printed.",
}


def _base_env(bin_dir: Path, home: Path, tmp: Path) -> dict[str, str]:
    node = shutil.which("node")
    path = [str(bin_dir)] + ([str(Path(node).parent)] if node else []) + ["/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TERM": "dumb",
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "TMPDIR": str(tmp),
    }


GEMINI_SETTINGS = {
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    "telemetry": {"enabled": False},
}


def client_command(
    client: str, kind: str, model: str, proxy: str, bin_dir: Path, home: Path, tmp: Path
) -> tuple[list[str], dict[str, str]]:
    env = _base_env(bin_dir, home, tmp)
    prompt = PROMPTS[kind]
    if client == "claude":
        env.update(
            ANTHROPIC_BASE_URL=proxy,
            ANTHROPIC_AUTH_TOKEN=CLIENT_KEY,
            ANTHROPIC_MODEL=model,
            ANTHROPIC_DEFAULT_OPUS_MODEL=model,
            ANTHROPIC_DEFAULT_SONNET_MODEL=model,
            ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
            ANTHROPIC_SMALL_FAST_MODEL=model,
            CLAUDE_CODE_SUBAGENT_MODEL=model,
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            DISABLE_TELEMETRY="1",
            DISABLE_AUTOUPDATER="1",
            DISABLE_ERROR_REPORTING="1",
            DISABLE_BUG_COMMAND="1",
            CLAUDE_CODE_MAX_RETRIES="1",
            API_TIMEOUT_MS="90000",
        )
        argv = [str(bin_dir / "claude"), "-p", prompt, "--model", model, "--output-format", "text"]
        if kind == "tool":
            argv += ["--allowedTools", "Bash(printf:*)"]
        return argv, env
    if client in ("gemini", "gemini-ca"):
        settings: dict[str, Any] = dict(GEMINI_SETTINGS)
        if client == "gemini":
            settings["security"] = {"auth": {"selectedType": "gemini-api-key"}}
            env.update(GEMINI_API_KEY=CLIENT_KEY, GOOGLE_GEMINI_BASE_URL=proxy)
        else:
            settings["security"] = {"auth": {"selectedType": "oauth-personal"}}
            env.update(
                GOOGLE_GENAI_USE_GCA="true",
                GOOGLE_CLOUD_ACCESS_TOKEN=CLIENT_KEY,
                CODE_ASSIST_ENDPOINT=proxy,
                GOOGLE_CLOUD_PROJECT="my-project",
            )
        env["GEMINI_CLI_TRUST_WORKSPACE"] = "true"
        (home / ".gemini").mkdir(parents=True, exist_ok=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
        argv = [str(bin_dir / "gemini"), "-m", model, "-p", prompt, "-o", "text"]
        if kind == "tool":
            argv += ["--approval-mode", "yolo"]
        return argv, env
    if client == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(
            f'model = "{model}"\n'
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
        argv = [
            str(bin_dir / "codex"),
            "exec",
            "--skip-git-repo-check",
            "--color",
            "never",
            "-o",
            str(tmp / "last.txt"),
            prompt,
        ]
        return argv, env
    raise AssertionError(client)


def run_client(bin_dir: Path, client: str, upstream: str, kind: str) -> Run:
    spec = UPSTREAM_SPECS[upstream]
    script = Script(upstream, secrets.token_hex(4))
    run = Run(client, upstream, kind, script)
    fake = spec.make(script)
    with tempfile.TemporaryDirectory(prefix=f"cliproxy-{client}-{upstream}-{kind}-") as base:
        home, tmp, cwd = Path(base, "home"), Path(base, "tmp"), Path(base, "cwd")
        for d in (home, tmp, cwd):
            d.mkdir()
        with (
            serve_in_thread(fake) as up_url,
            proxy_in_thread(f"api-keys: [{CLIENT_KEY}]\n" + spec.config(up_url)) as proxy_url,
        ):
            argv, env = client_command(client, kind, spec.model, proxy_url, bin_dir, home, tmp)
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
                run.stdout, run.stderr = proc.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                run.timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                run.stdout, run.stderr = proc.communicate()
            run.seconds = time.monotonic() - started
            run.returncode = proc.returncode
            last = tmp / "last.txt"
            if last.exists():
                run.last_message = last.read_text()
        run.requests = list(fake.requests)
        run.validation_errors = list(fake.validation_errors)
    return run


# ---------------------------------------------------------------------------------------------------------
# The pool: every selected run starts when the first test of this module asks for a result.


class Runs:
    def __init__(self, bin_dir: Path, wanted: list[tuple[str, str, str]]) -> None:
        self.bin_dir = bin_dir
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="client-run")
        self.futures: dict[tuple[str, str, str], Future[Run]] = {}
        # Gemini CLI starts slowest; start its runs first so the tail of the pool is short.
        for key in sorted(wanted, key=lambda k: (not k[0].startswith("gemini"), k)):
            self.futures[key] = self.pool.submit(run_client, bin_dir, *key)

    def get(self, client: str, upstream: str, kind: str) -> Run:
        key = (client, upstream, kind)
        if key not in self.futures:
            self.futures[key] = self.pool.submit(run_client, self.bin_dir, *key)
        return self.futures[key].result(timeout=RUN_TIMEOUT * (1 + len(self.futures) / WORKERS) + 60)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def runs(clients_bin: Path, request: pytest.FixtureRequest) -> Iterator[Runs]:
    wanted: list[tuple[str, str, str]] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if isinstance(item, pytest.Function) and item.module is request.module and callspec is not None:
            p = callspec.params
            wanted.append((p["client"], p["upstream"], p["kind"]))
    warm_up()
    pool = Runs(clients_bin, list(dict.fromkeys(wanted)))
    yield pool
    pool.close()


def _params() -> list[Any]:
    out = []
    for client in CLIENTS:
        for upstream in UPSTREAMS:
            for kind in KINDS:
                bug = KNOWN_BUGS.get((client, upstream, kind))
                marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=bug.reason)] if bug else []
                out.append(pytest.param(client, upstream, kind, marks=marks, id=f"{client}-{upstream}-{kind}"))
    return out


def printed(run: Run) -> str:
    return run.stdout + "\n" + run.last_message


def check(run: Run) -> None:
    """Everything a healthy run must show; raises AssertionError with the run's whole story otherwise."""
    script = run.script
    info = run.describe()
    assert not run.timed_out, info
    assert run.validation_errors == [], info
    assert run.requests, "the upstream saw no request\n" + info
    spec = UPSTREAM_SPECS[run.upstream]
    assert {spec.model_of(r) for r in run.requests} == {spec.upstream_model}, info
    if run.kind == "prompt":
        assert run.returncode == 0, info
        assert script.greeting in printed(run), info
        return
    # The tool round trip: a tool call first, then a request carrying the command's real output.
    with_results = [r for r in run.requests if tool_results(run.upstream, r.json)]
    assert with_results, "no request carried a tool result back to the upstream\n" + info
    seen = "\n".join(tool_results(run.upstream, with_results[0].json))
    assert script.tool_output in seen, f"tool result without the command's output: {seen[:500]!r}\n{info}"
    assert run.returncode == 0, info
    assert script.final in printed(run), info


@pytest.mark.parametrize(("client", "upstream", "kind"), _params())
def test_real_client(runs: Runs, client: str, upstream: str, kind: str) -> None:
    run = runs.get(client, upstream, kind)
    bug = KNOWN_BUGS.get((client, upstream, kind))
    if bug is None or any(bug.signature in e for e in run.validation_errors):
        check(run)  # for a known bug this fails with AssertionError: the expected xfail
        return
    try:
        check(run)  # passes once the bug is fixed: strict XPASS, delete the KNOWN_BUGS entry
    except AssertionError as exc:
        raise KnownBugChanged(f"known bug, but its symptom {bug.signature!r} is gone and the run still fails") from exc
