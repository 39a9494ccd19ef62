"""Benchmark cliproxy against a direct call to the upstream (and optionally LiteLLM's proxy) in one run.

Layout on the 2-core machine: the proxy under test is pinned to CPU0 alone; the fake upstream and the load
generator share CPU1 (both are cheap per request, and their CPU use is reported so a saturated CPU1 shows).
Every scenario runs against the fake upstream directly, then through cliproxy (then LiteLLM), and the table
shows each proxy beside the direct figure. See bench/README.md.

    uv run python bench/proxy_bench.py [--quick] [--with-litellm] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen import proc_tree
from pyspy_summary import summarise

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLIENT_KEY = "sk-client"
ALIAS = "my-alias"
UPSTREAM_MODEL = "real-model"
PROXY_CPU = "0"
AUX_CPU = "1"

#: Product-owner figures measured earlier for LiteLLM on this machine (used when LiteLLM is not run).
LITELLM_REFERENCE = {
    "cpu_ms_unary": 11.0,
    "rps_one_core": 90.0,
    "added_p50_ms": 11.0,
    "cpu_ms_stream": 40.0,
    "rss_mb": 450.0,
    "first_answer_s": 7.0,
}
TARGETS = {"throughput_x_litellm": 25.0, "added_p50_ms": 0.5, "rss_mb": 90.0, "first_answer_s": 1.0}


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A child started in its own process group, so the whole group can be killed."""

    name: str
    popen: subprocess.Popen[bytes]
    started: float
    log: Path
    first_answer_s: float | None = None
    prime_first_answer_s: float | None = None
    rss_after_start_mb: float | None = None

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.popen.pid


class Procs:
    """Every child of this run; :meth:`stop_all` kills their process groups (also on Ctrl-C)."""

    def __init__(self, logdir: Path, nice: int = 0) -> None:
        self.logdir = logdir
        self.nice = nice
        self.items: list[Proc] = []

    def start(
        self, name: str, cmd: list[str], cpu: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Proc:
        """Start ``cmd`` pinned to ``cpu`` with ``taskset`` (when present), output to a log file."""
        full = pinned(cmd, cpu, self.nice)
        log = self.logdir / f"{name}.log"
        with open(log, "wb") as out:
            started = time.perf_counter()
            popen = subprocess.Popen(
                full,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        set_autogroup_nice(popen.pid, self.nice)
        proc = Proc(name, popen, started, log)
        self.items.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        """SIGTERM the process group, SIGKILL it after 5 s."""
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # Stragglers that stayed in the group after the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.items:
            self.items.remove(proc)

    def stop_all(self) -> None:
        """Stop every child still known."""
        for proc in reversed(list(self.items)):
            self.stop(proc)


def pinned(cmd: list[str], cpu: str, nice: int) -> list[str]:
    """``cmd`` under ``nice -n`` (when asked) and ``taskset -c cpu`` (when present); the pid stays the same."""
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    if nice and shutil.which("nice"):
        cmd = ["nice", "-n", str(nice), *cmd]
    return cmd


def set_autogroup_nice(pid: int, nice: int) -> None:
    """With ``sched_autogroup`` each session is its own scheduling group, so plain ``nice`` has no effect
    against other sessions' load: set the group's niceness too (needs root for negative values)."""
    if nice:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def free_port() -> int:
    """A port nobody listens on right now (127.0.0.1 only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(root: int, field_name: str) -> float:
    """``VmHWM``/``VmRSS`` summed over the process tree (``uv run`` wrappers and workers included), in MB."""
    return sum(_status_kb(pid, field_name) for pid in proc_tree([root])) / 1024


def post_once(port: int, path: str, body: bytes, key: str | None, timeout: float = 2.0) -> tuple[int, bytes]:
    """One blocking HTTP request (readiness probes only)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: Proc, port: int, path: str, key: str | None, timeout: float) -> float:
    """Poll with a real chat completion until it answers 200; return seconds since the process started."""
    body = json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": "ping"}]}).encode()
    deadline = proc.started + timeout
    last = "no answer"
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail(proc.log)}")
        try:
            status, data = post_once(port, path, body, key)
            if status == 200:
                elapsed = time.perf_counter() - proc.started
                proc.first_answer_s = elapsed
                proc.rss_after_start_mb = memory_mb(proc.pid, "VmRSS")
                return elapsed
            last = f"HTTP {status}: {data[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.01)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f} s ({last}):\n{tail(proc.log)}")


# ---------------------------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One column of the table: where to send requests and which process to measure."""

    name: str
    port: int
    path: str
    proc: Proc
    key: str | None = CLIENT_KEY
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_rss_mb: float | None = None


def start_upstream(procs: Procs, args: argparse.Namespace) -> tuple[Proc, int]:
    """The fake OpenAI-compatible upstream, pinned next to the load generator."""
    port = free_port()
    cmd = [
        sys.executable,
        str(BENCH / "fake_upstream.py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chunks",
        str(args.chunks),
        "--chunk-delay",
        str(args.chunk_delay),
    ]
    proc = procs.start("upstream", cmd, AUX_CPU, env=child_env())
    wait_ready(proc, port, "/v1/chat/completions", None, 20)
    return proc, port


def cliproxy_command() -> list[str]:
    """The workspace venv's console script (no ``uv run`` wrapper process), else ``uv run``."""
    script = ROOT / ".venv" / "bin" / "cliproxy"
    if script.exists():
        return [str(script)]
    return ["uv", "run", "--project", str(ROOT), "cliproxy"]


def child_env(extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Environment for servers: bytecode caching on (into ``bench/.pycache``), as a real install has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and k not in drop}
    env["PYTHONPYCACHEPREFIX"] = str(BENCH / ".pycache")
    env.update(extra or {})
    return env


def start_twice(
    procs: Procs,
    name: str,
    command: Callable[[int], list[str]],
    env: dict[str, str],
    workdir: Path,
    timeout: float,
) -> Target:
    """A priming start (fills the bytecode and page caches), then the measured start."""
    prime_s = None
    for attempt in (1, 2):
        port = free_port()
        proc = procs.start(name, command(port), PROXY_CPU, env=env, cwd=workdir)
        wait_ready(proc, port, "/v1/chat/completions", CLIENT_KEY, timeout)
        if attempt == 1:
            prime_s = proc.first_answer_s
            procs.stop(proc)
    proc.prime_first_answer_s = prime_s
    return Target(name, port, "/v1/chat/completions", proc)


def start_cliproxy(procs: Procs, upstream_port: int, workdir: Path) -> Target:
    """cliproxy with a generated config that maps ``my-alias`` to the fake upstream."""

    def command(port: int) -> list[str]:
        cfg = workdir / f"cliproxy-{port}.yaml"
        cfg.write_text(
            f"""port: {port}
host: 127.0.0.1
api-keys: ["{CLIENT_KEY}"]
openai-compatibility:
  - name: fake
    base-url: http://127.0.0.1:{upstream_port}/v1
    api-key-entries:
      - api-key: upstream-key
    models:
      - name: {UPSTREAM_MODEL}
        alias: {ALIAS}
"""
        )
        return [
            *cliproxy_command(),
            "serve",
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]

    return start_twice(procs, "cliproxy", command, child_env(), workdir, 60)


def ensure_litellm(venv: Path, timeout: float) -> Path:
    """Create/reuse ``venv`` with ``litellm[proxy]`` from PyPI; return its ``litellm`` script."""
    script = venv / "bin" / "litellm"
    if script.exists():
        return script
    print(f"installing litellm[proxy] into {venv} (first run only; this can take a few minutes)...", flush=True)
    uv = shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", "--python", "3.11", str(venv)],
            [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "litellm[proxy]"],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "litellm[proxy]"],
        ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{(done.stderr or done.stdout)[-2000:]}")
    if not script.exists():
        raise RuntimeError(f"install finished but {script} is missing")
    return script


def start_litellm(procs: Procs, upstream_port: int, workdir: Path, script: Path) -> Target:
    """LiteLLM proxy, one uvicorn worker, callbacks/telemetry/cost-map fetch off, no database."""
    cfg = workdir / "litellm.yaml"
    cfg.write_text(
        f"""model_list:
  - model_name: {ALIAS}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: upstream-key
litellm_settings:
  telemetry: false
  set_verbose: false
  callbacks: []
  success_callback: []
  failure_callback: []
  service_callback: []
  turn_off_message_logging: true
general_settings:
  master_key: {CLIENT_KEY}
  disable_spend_logs: true
  disable_error_logs: true
  disable_adding_master_key_hash_to_db: true
"""
    )
    env = child_env(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network fetch of the price list at start
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",  # no .env loading
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
            "NO_REDOC": "True",
            "NO_PROXY": "127.0.0.1,localhost",
        },
        drop=("DATABASE_URL", "DIRECT_URL", "REDIS_URL"),
    )

    def command(port: int) -> list[str]:
        return [
            str(script),
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]

    return start_twice(procs, "litellm", command, env, workdir, 180)


# ---------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One load shape."""

    stream: bool
    concurrency: int

    @property
    def key(self) -> str:
        """Stable id used in the JSON output."""
        return f"{'stream' if self.stream else 'unary'}-c{self.concurrency}"

    @property
    def label(self) -> str:
        """Human-readable title."""
        return f"{'stream' if self.stream else 'non-stream'} c={self.concurrency}"


def run_scenario(target: Target, sc: Scenario, upstream: Proc, args: argparse.Namespace) -> dict[str, Any]:
    """Run the load generator (pinned to the aux CPU) against ``target`` and parse its JSON."""
    cmd = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--port",
        str(target.port),
        "--path",
        target.path,
        "--model",
        ALIAS,
        "--key",
        target.key or "",
        "--concurrency",
        str(sc.concurrency),
        "--warmup",
        str(args.warmup),
        "--duration",
        str(args.duration),
        "--pid",
        str(target.proc.pid),
    ]
    if target.proc is not upstream:
        cmd += ["--aux-pid", str(upstream.pid)]
    if sc.stream:
        cmd.append("--stream")
    full = pinned(cmd, AUX_CPU, args.nice)
    budget = args.warmup + args.duration + 60
    gen = subprocess.Popen(
        full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    set_autogroup_nice(gen.pid, args.nice)
    try:
        stdout, stderr = gen.communicate(timeout=budget)
    finally:
        if gen.poll() is None:
            os.killpg(gen.pid, signal.SIGKILL)
            gen.wait()
    if gen.returncode != 0:
        raise RuntimeError(f"load generator failed: {stderr[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    return result


def find_py_spy(args: argparse.Namespace) -> str:
    """``py-spy`` on PATH or in a bench venv; installed into ``bench/.venv-tools`` when missing."""
    for cand in (
        shutil.which("py-spy"),
        BENCH / ".venv-tools" / "bin" / "py-spy",
        args.litellm_venv / "bin" / "py-spy",
    ):
        if cand and Path(cand).exists():
            return str(cand)
    venv = BENCH / ".venv-tools"
    uv = shutil.which("uv")
    if not uv:
        raise RuntimeError("py-spy not found and uv is missing to install it")
    for step in (
        [uv, "venv", str(venv)],
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "py-spy"],
    ):
        subprocess.run(step, check=True, capture_output=True, timeout=600)
    return str(venv / "bin" / "py-spy")


def start_profiler(target: Target, sc: Scenario, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], Path]:
    """py-spy (GIL-holding samples only, target not paused) over one scenario's warm-up + window."""
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / f"{target.name}-{sc.key}.txt"
    seconds = max(1, round(args.warmup + args.duration))
    cmd = [
        args.py_spy,
        "record",
        "--pid",
        str(target.proc.pid),
        "--rate",
        "200",
        "--gil",
        "--nonblocking",
        "--format",
        "raw",
        "--duration",
        str(seconds),
        "--output",
        str(out),
    ]
    full = pinned(cmd, AUX_CPU, args.nice)
    spy = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    set_autogroup_nice(spy.pid, args.nice)
    return spy, out


def bench_target(target: Target, scenarios: list[Scenario], upstream: Proc, args: argparse.Namespace) -> None:
    """All scenarios against one target, then its peak RSS."""
    for sc in scenarios:
        spy = None
        if args.profile and target.name != "direct":
            spy = start_profiler(target, sc, args)
        try:
            r = run_scenario(target, sc, upstream, args)
        finally:
            if spy is not None:
                try:
                    spy[0].wait(30)
                except subprocess.TimeoutExpired:
                    spy[0].kill()
                    spy[0].wait()
        if spy is not None and spy[1].exists():
            summary = summarise(str(spy[1]), 30)
            spy[1].with_suffix(".summary.txt").write_text(summary + "\n")
        cpu_ms = r.get("target_cpu_ms_per_req")
        r["capacity_rps"] = 1000.0 / cpu_ms if cpu_ms else None
        target.results[sc.key] = r
        extra = f", {r['errors']} errors {r['error_samples'][:1]}" if r["errors"] else ""
        print(
            f"  {target.name:9s} {sc.label:16s} {r['rps']:9.1f} req/s  p50 {r['p50_ms']:8.2f} ms  "
            f"p99 {r['p99_ms']:8.2f} ms  cpu {fmt(r['target_cpu_ms_per_req'], 3)} ms/req{extra}",
            flush=True,
        )
    target.peak_rss_mb = memory_mb(target.proc.pid, "VmHWM")


# ---------------------------------------------------------------------------------------------- report


def fmt(v: float | None, digits: int = 2) -> str:
    """Number or dash."""
    if v is None or v != v:  # None or NaN
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def compare(metric: str, base: float | None, v: float | None) -> str:
    """``x`` ratio for throughput/CPU, ``+ms`` delta for latencies."""
    if base is None or v is None or base != base or v != v:
        return ""
    if metric.endswith("_ms") and metric != "target_cpu_ms_per_req":
        d = v - base
        return f"{'+' if d >= 0 else '-'}{fmt(abs(d))} ms"
    if base == 0:
        return ""
    return f"{v / base:.2f}x"


ROWS = [
    ("rps", "req/s"),
    ("p50_ms", "p50 latency ms"),
    ("p99_ms", "p99 latency ms"),
    ("ttft_p50_ms", "TTFT p50 ms"),
    ("ttft_p99_ms", "TTFT p99 ms"),
    ("target_cpu_ms_per_req", "CPU ms/request"),
    ("capacity_rps", "req/s per core (1000/CPU)"),
    ("target_cpu_util", "CPU util (of 1 core)"),
]


def render(targets: list[Target], scenarios: list[Scenario]) -> str:
    """The comparison table; ``direct`` is the baseline column."""
    direct = targets[0]
    proxies = targets[1:]
    head = ["metric", "direct"]
    for t in proxies:
        head += [t.name, "vs direct"]
    if len(proxies) == 2:
        head.append(f"{proxies[0].name}/{proxies[1].name}")
    rows: list[list[str]] = []
    for sc in scenarios:
        rows.append([f"[{sc.label}]"])
        for key, label in ROWS:
            if key.startswith("ttft") and not sc.stream:
                continue
            base = direct.results.get(sc.key, {}).get(key)
            row = [label, fmt(base)]
            vals = []
            for t in proxies:
                v = t.results.get(sc.key, {}).get(key)
                vals.append(v)
                row += [fmt(v), compare(key, base, v) if key != "target_cpu_util" else ""]
            if len(proxies) == 2:
                a, b = vals
                if a and b and key in ("rps", "capacity_rps"):
                    row.append(f"{a / b:.1f}x")
                elif a and b and key == "target_cpu_ms_per_req":
                    row.append(f"{b / a:.1f}x less")
                elif a is not None and b is not None and key.endswith("_ms"):
                    row.append(f"{a - b:+.2f} ms")
                else:
                    row.append("")
            rows.append(row)
        errs = [f"{t.name}: {t.results[sc.key]['errors']}" for t in targets if t.results.get(sc.key, {}).get("errors")]
        if errs:
            rows.append(["errors", ", ".join(errs)])
    rows.append(["[process]"])
    row = ["first answer s (priming start)"]
    for i, t in enumerate(targets):
        row.append(fmt(t.proc.prime_first_answer_s, 3))
        if i:
            row.append("")
    rows.append(row)
    row = ["first answer s"]
    for i, t in enumerate(targets):
        row.append(fmt(t.proc.first_answer_s, 3))
        if i:
            row.append("")
    rows.append(row)
    row = ["peak RSS MB"]
    for i, t in enumerate(targets):
        row.append(fmt(t.peak_rss_mb, 1))
        if i:
            row.append("")
    rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows] if i < len(r) and len(r) > 1) for i in range(len(head))]
    lines = [
        "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=False)))
    ]
    lines.append("-" * len(lines[0]))
    for r in rows:
        if len(r) == 1:
            lines.append(r[0])
            continue
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(lines)


def check_targets(targets: list[Target]) -> list[tuple[str, bool, str]]:
    """Compare cliproxy with the product owner's targets."""
    by = {t.name: t for t in targets}
    cp, direct, ll = by.get("cliproxy"), by["direct"], by.get("litellm")
    if cp is None:
        return []
    out: list[tuple[str, bool, str]] = []
    per_core = 1000 / LITELLM_REFERENCE["cpu_ms_unary"]
    for metric, what, ref in (
        ("rps", "measured req/s", LITELLM_REFERENCE["rps_one_core"]),
        ("capacity_rps", "req/s per CPU-second", per_core),
    ):
        mine = cp.results.get("unary-c64", {}).get(metric)
        if not mine:
            continue
        theirs = ll.results.get("unary-c64", {}).get(metric) if ll is not None else None
        base, src = (theirs, "measured") if theirs else (ref, "reference")
        ratio = mine / base
        out.append(
            (
                f"throughput >= {TARGETS['throughput_x_litellm']:.0f}x LiteLLM ({what}, non-stream c=64)",
                ratio >= TARGETS["throughput_x_litellm"],
                f"{ratio:.1f}x ({mine:.0f} vs {src} LiteLLM {base:.0f})",
            )
        )
    a, b = cp.results.get("unary-c1", {}).get("p50_ms"), direct.results.get("unary-c1", {}).get("p50_ms")
    if a is not None and b is not None:
        out.append(
            (
                f"added p50 at c=1 < {TARGETS['added_p50_ms']} ms",
                a - b < TARGETS["added_p50_ms"],
                f"+{a - b:.2f} ms",
            )
        )
    if cp.peak_rss_mb is not None:
        out.append(
            (
                f"peak RSS < {TARGETS['rss_mb']:.0f} MB",
                cp.peak_rss_mb < TARGETS["rss_mb"],
                f"{cp.peak_rss_mb:.1f} MB",
            )
        )
    if cp.proc.first_answer_s is not None:
        out.append(
            (
                f"first answer < {TARGETS['first_answer_s']:.0f} s",
                cp.proc.first_answer_s < TARGETS["first_answer_s"],
                f"{cp.proc.first_answer_s:.2f} s",
            )
        )
    return out


def noise_warnings(targets: list[Target]) -> list[str]:
    """Flag windows where other processes used the proxy's core, or the load-side core was full."""
    out: list[str] = []
    for t in targets:
        for key, r in t.results.items():
            busy = r.get("cpu_busy") or {}
            own = r.get("target_cpu_util") or 0.0
            aux = (r.get("upstream_cpu_util") or 0.0) + (r.get("loadgen_cpu_util") or 0.0)
            if t.name == "direct":
                aux += own
            else:
                other0 = busy.get(f"cpu{PROXY_CPU}", 0.0) - own
                if other0 > 0.15:
                    out.append(f"{t.name} {key}: other processes used {other0:.0%} of CPU{PROXY_CPU} (proxy)")
            busy1 = busy.get(f"cpu{AUX_CPU}", 0.0)
            if busy1 - aux > 0.15:
                out.append(f"{t.name} {key}: other processes used {busy1 - aux:.0%} of CPU{AUX_CPU} (load)")
            elif busy1 > 0.95 and t.name != "direct":
                out.append(f"{t.name} {key}: CPU{AUX_CPU} (upstream + load generator) was saturated")
    return out


# ---------------------------------------------------------------------------------------------- main


@contextlib.contextmanager
def cleanup_on_signals(procs: Procs) -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit, SIGINT into KeyboardInterrupt, and always stop the children."""

    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, _exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Also when started with SIGINT ignored (a background job): Ctrl-C / kill -INT still cleans up.
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        procs.stop_all()
        for s, h in old.items():
            signal.signal(s, h)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per scenario (default 1)")
    ap.add_argument("--concurrency", default="1,64", help="comma-separated concurrency levels (default 1,64)")
    ap.add_argument("--chunks", type=int, default=50, help="SSE chunks per streamed answer (default 50)")
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="upstream delay between chunks, seconds")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1.5 s per scenario after 0.5 s warm-up")
    ap.add_argument("--with-litellm", action="store_true", help="also benchmark LiteLLM's proxy (installs it)")
    ap.add_argument("--litellm-venv", type=Path, default=BENCH / ".venv-litellm")
    ap.add_argument("--no-cliproxy", action="store_true", help="skip cliproxy (direct/LiteLLM only)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--profile", type=Path, help="py-spy each proxy scenario into this directory (skews figures)")
    ap.add_argument(
        "--nice",
        type=int,
        default=-10 if os.geteuid() == 0 else 0,
        help="niceness for every benchmark process (default -10 as root: shields the run from other load)",
    )
    ap.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with process logs")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 1.5, 0.5
    args.py_spy = find_py_spy(args) if args.profile else None
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when cliproxy could not be measured."""
    args = parse_args(argv)
    if not Path("/proc/self/stat").exists():
        print("this benchmark reads /proc: Linux only", file=sys.stderr)
        return 2
    scenarios = [Scenario(stream, int(c)) for stream in (False, True) for c in args.concurrency.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="cliproxy-bench-"))
    procs = Procs(workdir, args.nice)
    targets: list[Target] = []
    notes: list[str] = []
    status = 0
    cpus = os.cpu_count() or 1
    print(
        f"cliproxy benchmark: {len(scenarios)} scenarios x {args.warmup:g}+{args.duration:g} s; proxy on CPU"
        f"{PROXY_CPU}, upstream + load generator on CPU{AUX_CPU} ({cpus} CPUs); logs in {workdir}",
        flush=True,
    )
    try:
        with cleanup_on_signals(procs):
            upstream, up_port = start_upstream(procs, args)
            direct = Target("direct", up_port, "/v1/chat/completions", upstream, key=None)
            targets.append(direct)
            print(f"fake upstream ready in {upstream.first_answer_s:.3f} s", flush=True)
            bench_target(direct, scenarios, upstream, args)

            if not args.no_cliproxy:
                try:
                    cp = start_cliproxy(procs, up_port, workdir)
                    print(
                        f"cliproxy first answer after {cp.proc.first_answer_s:.3f} s "
                        f"(priming start: {cp.proc.prime_first_answer_s:.3f} s)",
                        flush=True,
                    )
                    targets.append(cp)
                    bench_target(cp, scenarios, upstream, args)
                    procs.stop(cp.proc)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    notes.append(f"cliproxy: {exc}")
                    print(f"cliproxy failed: {exc}", file=sys.stderr, flush=True)
                    status = 1

            if args.with_litellm:
                try:
                    script = ensure_litellm(args.litellm_venv, timeout=1200)
                    ll = start_litellm(procs, up_port, workdir, script)
                    print(
                        f"litellm first answer after {ll.proc.first_answer_s:.3f} s "
                        f"(priming start: {ll.proc.prime_first_answer_s:.3f} s)",
                        flush=True,
                    )
                    targets.append(ll)
                    bench_target(ll, scenarios, upstream, args)
                    procs.stop(ll.proc)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    if targets and targets[-1].name == "litellm" and not targets[-1].results:
                        targets.pop()
                    notes.append(f"litellm skipped: {exc}")
                    print(f"litellm skipped: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted; children stopped", file=sys.stderr)
        return 130
    finally:
        if not args.keep_logs and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(render(targets, scenarios))
    checks = check_targets(targets)
    if checks:
        print("\ntargets (cliproxy):")
        for name, ok, detail in checks:
            print(f"  [{'PASS' if ok else 'MISS'}] {name}: {detail}")
    warnings = noise_warnings(targets)
    if warnings:
        print("\nmeasurement warnings:")
        for w in warnings:
            print(f"  - {w}")
    for n in notes:
        print(f"\nnote: {n}")
    if args.json:
        out = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "layout": {"proxy_cpu": PROXY_CPU, "upstream_and_loadgen_cpu": AUX_CPU},
            "targets": {
                t.name: {
                    "first_answer_s": t.proc.first_answer_s,
                    "priming_first_answer_s": t.proc.prime_first_answer_s,
                    "rss_after_start_mb": t.proc.rss_after_start_mb,
                    "peak_rss_mb": t.peak_rss_mb,
                    "scenarios": t.results,
                }
                for t in targets
            },
            "checks": [{"target": n, "ok": ok, "detail": d} for n, ok, d in checks],
            "warnings": warnings,
            "notes": notes,
        }
        args.json.write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
