"""Session fixture for the `clients` tests: the real CLIs, installed by ``install.sh`` into a shared cache.

The CLIs are about 740 MB from npm. They live outside the clone, in ``${XDG_CACHE_HOME:-~/.cache}/cliproxy/
clients`` (``CLIENTS_PREFIX`` chooses another place; ``<repo>/.clients`` when the cache cannot be created), so
they are downloaded once per machine, and the download is announced on the terminal while it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALL = HERE / "install.sh"

#: Exit status of install.sh when node or npm is missing: the one case in which the tests are skipped.
NO_NODE = 3


def clients_prefix(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the CLIs live: ``CLIENTS_PREFIX``, else the user cache, else the clone (cache not writable).

    The same choice as install.sh makes; nothing is created here.
    """
    if environ.get("CLIENTS_PREFIX"):
        return Path(environ["CLIENTS_PREFIX"])
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    cache = Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "cliproxy" / "clients"
    existing = cache
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK)):
        return ROOT / ".clients"
    return cache


def _announcer(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal even while pytest captures output."""
    capman = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        if capman is None or reporter is None:
            print(line, file=sys.__stderr__, flush=True)
            return
        with capman.global_and_fixture_disabled():
            reporter.write_line(line)

    return say


@pytest.fixture(scope="session")
def clients_bin(pytestconfig: pytest.Config) -> Path:
    """``<prefix>/bin`` holding ``claude``, ``gemini`` and ``codex`` at their pinned versions.

    install.sh is idempotent and returns at once when everything is present (``.ci/run`` may have run it
    already). When it has to download, its progress lines are shown on the terminal. Skips when node/npm
    are missing; any other install failure is an error.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the real-client tests need node and npm on PATH to install the CLIs")
    prefix = clients_prefix()
    env = dict(os.environ, CLIENTS_PREFIX=str(prefix))
    say = _announcer(pytestconfig)
    output: list[str] = []
    installing = False
    with subprocess.Popen(
        ["bash", str(INSTALL)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            installing = installing or line.startswith("install.sh: installing")
            if installing:
                say(line.rstrip("\n"))
        try:
            returncode = proc.wait(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    text = "".join(output)
    if returncode == NO_NODE:
        pytest.skip(f"the real-client tests cannot install the CLIs: {text.strip()}")
    if returncode != 0:
        pytest.fail(f"tests/clients/install.sh failed (exit {returncode}):\n{text[-6000:]}")
    return prefix / "bin"
