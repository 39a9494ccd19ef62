"""The example third-party plugin (``examples/cliproxy-echo``) installed the way a user would install it.

It is built into a temporary ``--target`` directory (not the workspace venv) and exercised through the real
``cliproxy`` console script with ``PYTHONPATH`` pointing there: entry-point discovery, ``plugins list``, a
plugin-added CLI command, and a served chat request answered by the plugin's executor via the openai SDK.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cliproxy-echo"
CLIPROXY = Path(sys.executable).parent / "cliproxy"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the example once per module, without dependencies (cliproxy comes from the workspace venv)."""
    target = tmp_path_factory.mktemp("echo-site")
    uv = shutil.which("uv")
    if uv:
        cmd = [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--refresh-package",
            "cliproxy-echo",
            "--python",
            sys.executable,
            "--target",
            str(target),
            str(EXAMPLE),
        ]
    else:  # pragma: no cover - uv is how the workspace is run, pip is the fallback
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(EXAMPLE),
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (target / "cliproxy_echo" / "plugin.py").is_file()
    return target


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPROXY_")}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def _cli(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLIPROXY), *args],
        cwd=cwd,
        env=_env(site, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _plugins(site: Path, cwd: Path, **env: str) -> dict[str, dict[str, Any]]:
    proc = _cli(site, cwd, "plugins", "list", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


def test_plugins_list_shows_echo_with_distribution_and_contributions(site: Path, tmp_path: Path) -> None:
    rows = _plugins(site, tmp_path)
    echo = rows["echo"]
    assert echo["distribution"] == "cliproxy-echo"
    assert echo["version"] == "0.1.0"
    assert echo["builtin"] is False
    assert echo["error"] is None
    assert echo["executors"] == ["echo"]
    assert echo["providers"] == ["echo"]
    assert echo["config_keys"] == ["echo-provider"]
    assert set(echo["hooks"]) == {
        "register_config",
        "register_models",
        "register_executors",
        "credentials_from_config",
        "register_commands",
    }


def test_disable_plugins_env_removes_echo(site: Path, tmp_path: Path) -> None:
    rows = _plugins(site, tmp_path, CLIPROXY_DISABLE_PLUGINS="echo")
    assert "echo" not in rows
    assert "cliproxy.formats.builtin" in rows
    proc = _cli(site, tmp_path, "echo-info", CLIPROXY_DISABLE_PLUGINS="echo")
    assert proc.returncode != 0
    assert "No such command" in proc.stderr


def test_echo_info_command_added_by_plugin(site: Path, tmp_path: Path) -> None:
    proc = _cli(site, tmp_path, "echo-info")
    assert proc.returncode == 0, proc.stderr
    assert "cliproxy-echo 0.1.0" in proc.stdout
    assert "'echo-provider'" in proc.stdout


def test_config_check_validates_the_claimed_key(site: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("port: 1\necho-provider:\n  models: [a]\n  prefx: typo\n")
    proc = _cli(site, tmp_path, "config", "check", "--config", str(cfg))
    assert proc.returncode == 2
    # msgspec reports unknown fields at the enclosing object, so the line is that of the section (or deeper).
    assert re.search(r"config\.yaml:[24]: echo-provider", proc.stderr), proc.stderr
    assert "prefx" in proc.stderr


@pytest.fixture(scope="module")
def server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("echo-serve")
    port = _free_port()
    cfg = work / "config.yaml"
    # The port is also in the file so the test does not depend on the --port override alone.
    cfg.write_text(
        f"port: {port}\nauth-dir: {work / 'auth'}\necho-provider:\n  models: [echo-1, echo-big]\n  prefix: 'echo: '\n"
    )
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(CLIPROXY), "serve", "--config", str(cfg), "--port", str(port)],
        cwd=work,
        env=_env(site),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # generous: CI machines may be loaded; an early exit fails at once
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {(work / 'server.log').read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not start: {(work / 'server.log').read_text()}")
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        log.close()


def test_serve_answers_chat_non_stream(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="echo-big",
        messages=[
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "hello from the sdk"},
        ],
    )
    assert resp.choices[0].message.content == "echo: hello from the sdk"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "echo-big"
    assert [m.id for m in client.models.list()] == ["echo-1", "echo-big"]


def test_serve_answers_chat_stream(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="echo-1",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_serve_unknown_model_is_not_routed_to_echo(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code in (400, 404)
    assert "gpt-4o" in err.value.message
