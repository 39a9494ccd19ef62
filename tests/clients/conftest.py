"""Session fixture for the `clients` tests: the real CLIs, installed by ``install.sh`` into ``<repo>/.clients``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INSTALL = HERE / "install.sh"
PREFIX = Path(os.environ.get("CLIENTS_PREFIX") or ROOT / ".clients")

#: Exit status of install.sh when node or npm is missing: the one case in which the tests are skipped.
NO_NODE = 3


@pytest.fixture(scope="session")
def clients_bin() -> Path:
    """``<prefix>/bin`` holding ``claude``, ``gemini`` and ``codex`` at their pinned versions.

    install.sh is idempotent and returns at once when everything is present (``.ci/run`` may have run it
    already). Skips when node/npm are missing; any other install failure is an error.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the real-client tests need node and npm on PATH to install the CLIs")
    env = dict(os.environ, CLIENTS_PREFIX=str(PREFIX))
    proc = subprocess.run(["bash", str(INSTALL)], env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode == NO_NODE:
        pytest.skip(f"the real-client tests cannot install the CLIs: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(
            f"tests/clients/install.sh failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return PREFIX / "bin"
