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
    inert = tmp_path / "inert.yaml"
    inert.write_text("request-log: true\nws-auth: false\n")
    r = run("config", "check", "--config", str(inert))
    assert r.returncode == 0
    assert r.stderr.strip() == (
        "warning: 'request-log' is set but has no effect: cliproxy does not implement request logging yet"
    )


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
        body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
        # No credentials at all: the answer says so and how to add some, not "unknown model".
        assert r.status_code == 400 and r.json()["error"]["code"] == "no_credentials"
        message = r.json()["error"]["message"]
        assert "no upstream credentials configured" in message and "config.yaml" in message
        assert "cliproxy login <provider>" in message and "unknown provider" not in message
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    head = "\n".join(out.splitlines()[:6])
    assert "no config.yaml found" in head and "cliproxy login" in head
    assert "127.0.0.1" in out


def test_serve_on_a_taken_port_is_one_clear_line_and_a_failed_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("serve", "--port", str(port), cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: port {port} on 127.0.0.1 is already in use (another cliproxy?); "
        "use --port or change 'port' in config.yaml"
    )
    out = r.stdout + r.stderr
    assert "cliproxy listening" not in out and "Traceback" not in out and "Errno" not in out


def test_serve_says_listening_only_once_it_accepts_connections(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(f"port: 0\nauth-dir: {tmp_path / 'auths'}\nusage-statistics-enabled: true\n")
    proc = subprocess.Popen(
        [BIN, "serve", "--log-format", "json"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "cliproxy listening" in line:
                break
        else:
            raise AssertionError("".join(lines))
        event = json.loads(lines[-1])
        # The real port (port 0 picks one), and it answers at once: no retry loop.
        assert event["url"].startswith("http://127.0.0.1:") and not event["url"].endswith(":0")
        assert httpx.get(event["url"] + "/healthz", timeout=5).status_code == 200
        assert sum("cliproxy listening" in x for x in lines) == 1
        # A reference key that does nothing yet is said once, before the server is up.
        assert sum("'usage-statistics-enabled' is set but has no effect" in x for x in lines) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
