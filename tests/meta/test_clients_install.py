"""The ~740 MB download of the real CLI clients is documented, cached outside the clone and announced."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "tests" / "clients" / "install.sh"


def clients_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clients_conftest_under_test", ROOT / "tests/clients/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_says_what_the_test_command_downloads_and_where() -> None:
    readme = (ROOT / "README.md").read_text()
    dev = readme[readme.index("## Development") :]
    for fact in ("740 MB", "${XDG_CACHE_HOME:-~/.cache}/cliproxy/clients", "CLIENTS_PREFIX", '-m "not clients"'):
        assert fact in dev, fact
    head = readme[: readme.index("## Contents")]
    assert "740 MB" in head  # next to the test command itself


def test_clients_are_cached_outside_the_clone(tmp_path: Path) -> None:
    prefix_of = clients_conftest().clients_prefix
    base = {k: v for k, v in os.environ.items() if k not in ("CLIENTS_PREFIX", "XDG_CACHE_HOME")}
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    cases = [
        ({"XDG_CACHE_HOME": str(tmp_path / "cache")}, tmp_path / "cache" / "cliproxy" / "clients"),
        ({"HOME": str(tmp_path / "home")}, tmp_path / "home" / ".cache" / "cliproxy" / "clients"),
        ({"XDG_CACHE_HOME": str(tmp_path), "CLIENTS_PREFIX": str(tmp_path / "mine")}, tmp_path / "mine"),
        # No usable cache directory: the clone, where .clients is ignored by git.
        ({"XDG_CACHE_HOME": str(a_file)}, ROOT / ".clients"),
    ]
    for extra, expected in cases:
        env = {**base, **extra}
        r = subprocess.run(["bash", str(INSTALL), "--prefix"], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()) == expected, extra
        assert prefix_of(env) == expected, extra  # the fixture makes the same choice
    assert not (tmp_path / "cache").exists(), "asking where must not create anything"


FAKE_INSTALL = """#!/usr/bin/env bash
if [[ -n "$ALREADY" ]]; then echo "install.sh: claude, gemini, codex already in $CLIENTS_PREFIX"; exit 0; fi
echo "install.sh: installing the real clients for tests/clients (about 740 MB from npm, once) into $CLIENTS_PREFIX"
echo "added 3 packages in 1s"
echo "install.sh: installed claude, gemini, codex into $CLIENTS_PREFIX in 1s"
"""


@pytest.mark.parametrize("already", [False, True], ids=["download", "cached"])
def test_the_download_is_announced_on_the_terminal_despite_capture(tmp_path: Path, already: bool) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the clients fixture skips without node and npm")
    assert 'echo "install.sh: installing the real clients' in INSTALL.read_text()
    fake = tmp_path / "fake-install.sh"
    fake.write_text(FAKE_INSTALL)
    inner = tmp_path / "inner"
    inner.mkdir()
    real = str(ROOT / "tests" / "clients" / "conftest.py")
    (inner / "conftest.py").write_text(
        "import importlib.util\nfrom pathlib import Path\n"
        f"spec = importlib.util.spec_from_file_location('clients_conftest', {real!r})\n"
        "mod = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(mod)\n"
        f"mod.INSTALL = Path({str(fake)!r})\nclients_bin = mod.clients_bin\n"
    )
    (inner / "test_inner.py").write_text(
        "import os\nfrom pathlib import Path\n\n"
        "def test_uses_the_clients(clients_bin):\n"
        "    assert clients_bin == Path(os.environ['CLIENTS_PREFIX']) / 'bin'\n"
    )
    env = {**os.environ, "CLIENTS_PREFIX": str(tmp_path / "prefix"), "ALREADY": "1" if already else ""}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)],
        cwd=inner,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    if already:
        assert "install.sh:" not in r.stdout + r.stderr  # nothing to say when nothing is downloaded
    else:
        # Shown although pytest captures the passing test's output (no -s).
        assert "install.sh: installing the real clients for tests/clients (about 740 MB" in r.stdout
        assert "added 3 packages" in r.stdout and "install.sh: installed" in r.stdout
