"""The ``cliproxy`` command as a user runs it (real subprocesses)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = str(Path(sys.executable).parent / "cliproxy")


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env={**os.environ, **(env or {})}
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version_and_help() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("cliproxy, version ")
    for cmd in ([], ["serve"], ["plugins", "list"], ["config", "check"], ["login"]):
        h = run(*cmd, "--help")
        assert h.returncode == 0 and "Usage:" in h.stdout


def test_plugins_list_names_openai_compat() -> None:
    r = run("plugins", "list")
    assert r.returncode == 0, r.stderr
    assert "openai-compat  cliproxy-openai-compat 0.1.0" in r.stdout
    rows = json.loads(run("plugins", "list", "--json").stdout)
    compat = next(row for row in rows if row["name"] == "openai-compat")
    assert compat["distribution"] == "cliproxy-openai-compat"
    assert compat["executors"] == ["openai-compat"]
    assert "credentials_from_config" in compat["hooks"]
    disabled = json.loads(run("plugins", "list", "--json", env={"CLIPROXY_DISABLE_PLUGINS": "openai-compat"}).stdout)
    assert all(row["name"] != "openai-compat" for row in disabled)


def test_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("port: 8400\nopenai-compatibility:\n  - name: a\n    base-url: http://x/v1\n    api-keys: [k]\n")
    r = run("config", "check", "--config", str(good))
    assert r.returncode == 0 and "OK (1 credential(s) from config, port 8400)" in r.stdout
    bad = tmp_path / "config.yaml"
    bad.write_text('debug: true\nport: "abc"\n')
    r = run("config", "check", "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip() == 'error: config.yaml:2: port: expected an integer, got "abc"'
    assert "Traceback" not in r.stderr
    r = run("serve", "--config", str(bad))
    assert r.returncode == 2 and "config.yaml:2: port" in r.stderr


def test_config_check_names_the_plugin_a_provider_key_needs(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("port: 8400\nclaude-api-key:\n  - api-key: sk-ant-api03-x\n")
    r = run("config", "check", "--config", str(cfg))
    assert r.returncode == 0 and "OK (1 credential(s) from config" in r.stdout and r.stderr == ""
    r = run("config", "check", "--config", str(cfg), env={"CLIPROXY_DISABLE_PLUGINS": "claude"})
    assert r.returncode == 0 and "OK (0 credential(s) from config" in r.stdout
    assert r.stderr.startswith(
        "warning: config.yaml:2: claude-api-key is handled by the cliproxy-claude plugin, which is installed but "
        "not loaded (disabled in CLIPROXY_DISABLE_PLUGINS"
    )
    assert len(r.stderr.strip().splitlines()) == 1


def test_serve_without_config_explains_how_to_add_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [BIN, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = time.monotonic()
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() - started < 30
            time.sleep(0.05)
        # No api-keys: open to localhost only, models answer in OpenAI shape.
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={"model": "x", "messages": []})
        assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    head = "\n".join(out.splitlines()[:6])
    assert "no config.yaml found" in head and "cliproxy login" in head
    assert "127.0.0.1" in out
