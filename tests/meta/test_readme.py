"""README commands and snippets work as written (run against fakes instead of real providers)."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

from cliproxy.config import load_settings
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.testing import FakeClaude, FakeGemini, FakeOpenAIChat, FakeOpenAIResponses, Reply, serve_on_loopback
from cliproxy.testing.proxy import run_proxy

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent / "cliproxy"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_two_commands_near_the_top_and_ci_runs_the_test_command() -> None:
    head = README[: README.index("## Contents")]
    cmds = [b.strip() for b in re.findall(r"```bash\n(.*?)```", head, flags=re.S)]
    assert cmds == ["pip install uv && uv run cliproxy serve", "pip install uv && uv run pytest"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert cmds[1] in ci


def readme_config() -> str:
    return next(b for b in blocks("yaml") if b.startswith("port:"))


def test_config_example_loads_without_warnings(tmp_path: Path) -> None:
    p = tmp_path / "config.yaml"
    p.write_text(readme_config())
    host = PluginHost(make_plugin_manager(disabled=()))
    s = load_settings(p, host.config_sections().items)
    assert s.warnings == []
    assert s.section("openai-compatibility")[0].models[0].alias == "kimi-k2"


def test_listed_commands_exist() -> None:
    listing = next(b for b in blocks("text") if b.startswith("cliproxy serve"))
    for line in listing.splitlines():
        words = [w for w in line.split("#")[0].split() if re.fullmatch(r"[a-z-]+", w)]
        cmd = words[1:3] if words[1:2] in (["plugins"], ["config"]) else words[1:2]
        if not cmd or cmd[0].startswith("--"):
            continue
        r = subprocess.run([str(BIN), *cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (cmd, r.stderr)


async def test_sdk_snippets_and_curl_against_the_readme_config(tmp_path: Path) -> None:
    fakes = {"gemini": FakeGemini(), "claude": FakeClaude(), "codex": FakeOpenAIResponses(), "compat": FakeOpenAIChat()}
    for f in fakes.values():
        f.handler = lambda rec: Reply(text="Hi from the README!")
    async with (
        serve_on_loopback(fakes["gemini"]) as g,
        serve_on_loopback(fakes["claude"]) as c,
        serve_on_loopback(fakes["codex"]) as x,
        serve_on_loopback(fakes["compat"]) as o,
    ):
        cfg = yaml.safe_load(readme_config())
        cfg["auth-dir"] = str(tmp_path / "auths")
        cfg["gemini-api-key"][0]["base-url"] = g
        cfg["claude-api-key"][0]["base-url"] = c
        cfg["codex-api-key"][0]["base-url"] = x + "/v1"
        cfg["openai-compatibility"][0]["base-url"] = o + "/v1"
        for entry in cfg["openai-compatibility"][0]["api-key-entries"]:
            entry.pop("proxy-url", None)
        async with run_proxy(yaml.safe_dump(cfg), directory=tmp_path) as proxy:
            for snippet in blocks("python"):
                code = snippet.replace("http://127.0.0.1:8317", proxy.url)
                out = io.StringIO()

                def run(code: str = code, out: io.StringIO = out) -> None:
                    with redirect_stdout(out):
                        exec(compile(code, "README.md", "exec"), {})

                await asyncio.to_thread(run)
                assert out.getvalue().strip() == "Hi from the README!", snippet
            curl = next(b for b in blocks("bash") if b.startswith("curl"))
            if shutil.which("curl") is None:
                pytest.skip("curl is not installed")
            cmd = curl.replace("http://127.0.0.1:8317", proxy.url).replace("\\\n", " ")
            r = await asyncio.to_thread(subprocess.run, ["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and ["Hi", "from", "the", "README!"][0] in r.stdout and "[DONE]" in r.stdout


def test_every_yaml_block_is_a_valid_config(tmp_path: Path) -> None:
    sections = PluginHost(make_plugin_manager(disabled=())).config_sections().items
    for i, block in enumerate(blocks("yaml")):
        p = tmp_path / f"block{i}.yaml"
        p.write_text(block)
        assert load_settings(p, sections).warnings == [], block
