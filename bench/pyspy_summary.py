"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile: self time by package and by function.

Usage: ``python bench/pyspy_summary.py profile.txt [--top 25]``
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

#: Leaf frames of threads that only wait (py-spy's idle detection misses some inside containers).
_IDLE = ("WorkerThread.run (anyio", "Thread.wait (threading", "Condition.wait (threading")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*?)(?::(?P<line>\d+))?\)$")


def package_of(frame: str) -> str:
    """``httpx`` for ``AsyncClient.send (httpx/_client.py:1629)``; the event loop for ``Runner.run``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return "?"
    path = m.group("file")
    if path.startswith("asyncio/runners.py"):
        return "event loop (uvloop C code + socket syscalls)"
    if path.startswith("<frozen"):
        return "importlib"
    return path.split("/", 1)[0] if "/" in path else path


def strip_line(frame: str) -> str:
    """``func (file)`` without the line number, so a function's lines add up."""
    m = _FRAME.match(frame.strip())
    return f"{m.group('func')} ({m.group('file')})" if m else frame


def summarise(path: str, top: int) -> str:
    """The report text."""
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack.strip() or not n.isdigit():
                continue
            count = int(n)
            frames = [f for f in stack.split(";") if f.strip()]
            if not frames or frames[-1].startswith(_IDLE):
                continue
            total += count
            self_fn[strip_line(frames[-1])] += count
            self_pkg[package_of(frames[-1])] += count
            for f in {strip_line(f) for f in frames}:
                incl_fn[f] += count
    if not total:
        return "no samples"
    out = [f"{total} samples", "", "self time by package:"]
    out += [f"  {100 * c / total:5.1f}%  {p}" for p, c in self_pkg.most_common(12)]
    out += ["", "self time by function:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in self_fn.most_common(top)]
    out += ["", "inclusive time by function (request path):"]
    skip = (
        "click/",
        "uvicorn/main.py",
        "uvicorn/server.py",
        "uvicorn/_compat.py",
        "cli.py",
        "(cliproxy)",
        "asyncio/runners.py",
    )
    shown = [(f, c) for f, c in incl_fn.most_common() if not any(s in f for s in skip)]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in shown[:top]]
    return "\n".join(out)


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
