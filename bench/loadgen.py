"""Closed-loop HTTP/1.1 load generator: raw asyncio protocol + httptools on keep-alive connections.

Each of ``--concurrency`` connections sends one request, waits for the whole answer, and sends the next, for
``--warmup`` + ``--duration`` seconds. Requests that finish inside the measured window count.
While the window is open, the CPU time (utime+stime from ``/proc``) of ``--pid`` (and its descendants) is
sampled, so the caller gets CPU ms per request for the process under test. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httptools

_CLK = os.sysconf("SC_CLK_TCK")


def proc_tree(roots: list[int]) -> list[int]:
    """``roots`` and every live descendant (children of ``uv run``, worker processes...)."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                rest = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parent[int(name)] = int(rest[1])
    out = [r for r in roots if r in parent]
    frontier = list(out)
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.extend(kids)
        frontier.extend(kids)
    return out


def cpu_seconds(pids: list[int]) -> float:
    """Total user+system CPU seconds of ``pids`` (processes that vanished count as 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                rest = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(rest[11]) + int(rest[12])
    return total / _CLK


def cpu_busy() -> dict[str, float]:
    """Busy seconds per CPU from ``/proc/stat`` (user+nice+system+steal; softirq network work excluded)."""
    out: dict[str, float] = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3].isdigit():
                f = line.split()
                out[f[0]] = sum(int(f[i]) for i in (1, 2, 3, 8)) / _CLK
    return out


@dataclass
class Stats:
    """Samples collected during the measured window."""

    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    events: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, why: str) -> None:
        """Count a failed request and keep the first few reasons."""
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(why)


class ClientConn(asyncio.Protocol):
    """One keep-alive connection that carries one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.first_body = 0.0
        self.status = 0
        self.events = 0
        self.tail = b""
        self.keep_alive = True
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Feed the response parser."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"bad response: {exc}")

    def on_message_begin(self) -> None:
        """Reset per-response state."""
        self.first_body = 0.0
        self.events = 0
        self.tail = b""

    def on_headers_complete(self) -> None:
        """Record the status and whether the connection stays open."""
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        """Time the first body bytes (first SSE event for streams) and count events."""
        if not self.first_body:
            self.first_body = time.perf_counter()
        self.events += body.count(b"data:")
        self.tail = (self.tail + body)[-32:]

    def on_message_complete(self) -> None:
        """Wake the request loop."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail an in-flight request."""
        self.closed = True
        self._fail(f"connection lost: {exc}")

    def _fail(self, why: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()


async def _connect(host: str, port: int) -> ClientConn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(ClientConn, host, port)
    return proto


async def worker(
    host: str, port: int, request: bytes, stream: bool, t_measure: float, t_end: float, stats: Stats
) -> int:
    """Send requests back to back until ``t_end``; return how many completed inside the window."""
    loop = asyncio.get_running_loop()
    conn = await _connect(host, port)
    done_in_window = 0
    perf = time.perf_counter
    while True:
        t0 = perf()
        if t0 >= t_end:
            break
        if conn.closed or not conn.keep_alive:
            conn = await _connect(host, port)
        conn.waiter = loop.create_future()
        assert conn.transport is not None
        conn.transport.write(request)
        try:
            await conn.waiter
        except ConnectionError as exc:
            if t0 >= t_measure:
                stats.error(str(exc))
            conn = await _connect(host, port)
            continue
        t1 = perf()
        if t1 < t_measure or t1 > t_end:
            continue
        ok = conn.status == 200 and (not stream or b"[DONE]" in conn.tail)
        if not ok:
            stats.error(f"status {conn.status}, tail {conn.tail!r}")
            continue
        done_in_window += 1
        stats.latencies.append(t1 - t0)
        if stream:
            stats.ttfts.append(conn.first_body - t0)
            stats.events += conn.events
    if conn.transport is not None:
        conn.transport.close()
    return done_in_window


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run one scenario and summarise it."""
    body = json.dumps(
        {"model": args.model, "messages": [{"role": "user", "content": "Say hello"}], "stream": args.stream},
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Authorization: Bearer {args.key}\r\nContent-Type: application/json\r\n"
        f"Accept: {'text/event-stream' if args.stream else 'application/json'}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    pids = [int(p) for p in args.pid.split(",") if p] if args.pid else []
    aux = [int(p) for p in args.aux_pid.split(",") if p] if args.aux_pid else []
    stats = Stats()
    now = time.perf_counter()
    t_measure = now + args.warmup
    t_end = t_measure + args.duration
    cpu: dict[str, float] = {}
    machine: dict[str, float] = {}

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, t_measure - time.perf_counter()))
        tree = proc_tree(pids)
        aux_tree = proc_tree(aux)
        cpu["target0"], cpu["aux0"], cpu["self0"] = (
            cpu_seconds(tree),
            cpu_seconds(aux_tree),
            time.process_time(),
        )
        busy0 = cpu_busy()
        cpu["t0"] = time.perf_counter()
        await asyncio.sleep(max(0.0, t_end - time.perf_counter()))
        cpu["target1"], cpu["aux1"], cpu["self1"] = (
            cpu_seconds(tree),
            cpu_seconds(aux_tree),
            time.process_time(),
        )
        busy1 = cpu_busy()
        cpu["t1"] = time.perf_counter()
        window = cpu["t1"] - cpu["t0"]
        for name, v in busy1.items():
            machine[name] = (v - busy0.get(name, v)) / window if window > 0 else 0.0

    samp = asyncio.ensure_future(sampler())
    tasks = [
        asyncio.ensure_future(worker(args.host, args.port, request, args.stream, t_measure, t_end, stats))
        for _ in range(args.concurrency)
    ]
    done, pending = await asyncio.wait(tasks, timeout=args.warmup + args.duration + args.grace)
    for t in pending:
        t.cancel()
    await samp
    completed = 0
    for t in done:
        if t.exception() is not None:
            stats.error(f"worker failed: {t.exception()!r}")
        else:
            completed += t.result()
    window = cpu["t1"] - cpu["t0"]
    lat = sorted(stats.latencies)
    ttft = sorted(stats.ttfts)
    target_cpu = cpu["target1"] - cpu["target0"]
    return {
        "stream": args.stream,
        "concurrency": args.concurrency,
        "window_s": window,
        "requests": completed,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "rps": completed / window if window > 0 else 0.0,
        "p50_ms": _pct(lat, 0.50) * 1e3,
        "p99_ms": _pct(lat, 0.99) * 1e3,
        "mean_ms": (sum(lat) / len(lat) * 1e3) if lat else float("nan"),
        "ttft_p50_ms": _pct(ttft, 0.50) * 1e3 if args.stream else None,
        "ttft_p99_ms": _pct(ttft, 0.99) * 1e3 if args.stream else None,
        "events_per_stream": (stats.events / completed) if args.stream and completed else None,
        "target_cpu_s": target_cpu if pids else None,
        "target_cpu_ms_per_req": (target_cpu * 1e3 / completed) if pids and completed else None,
        "target_cpu_util": target_cpu / window if pids and window > 0 else None,
        "upstream_cpu_util": (cpu["aux1"] - cpu["aux0"]) / window if aux and window > 0 else None,
        "loadgen_cpu_util": (cpu["self1"] - cpu["self0"]) / window if window > 0 else None,
        "cpu_busy": machine,
    }


def main() -> None:
    """Command line entry point: one scenario, one JSON line on stdout."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--key", default="sk-client")
    ap.add_argument("--model", default="my-alias")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--grace", type=float, default=30.0, help="extra seconds to let in-flight requests finish")
    ap.add_argument("--pid", default="", help="comma-separated pids whose CPU is measured (with descendants)")
    ap.add_argument("--aux-pid", default="", help="comma-separated pids whose CPU use is reported (upstream)")
    args = ap.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run  # type: ignore[assignment]
    result = runner(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
