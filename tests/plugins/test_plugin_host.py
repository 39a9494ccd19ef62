"""The plugin host survives broken plugins: each is reported by name and skipped, the rest keep working.

Entry-point plugins are simulated with real ``*.dist-info`` directories (``METADATA`` + ``entry_points.txt``)
on ``sys.path`` (in process) or ``PYTHONPATH`` (for the ``cliproxy`` console script in a subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from cliproxy import hookimpl
from cliproxy.app import create_app
from cliproxy.config import Settings, load_settings
from cliproxy.container import Container
from cliproxy.credentials import Credential
from cliproxy.plugins import PluginHost, make_plugin_manager
from cliproxy.protocols import UpstreamCall, UpstreamResponse
from cliproxy.registries import (
    DuplicateRegistration,
    ExecutorRegistrar,
    FormatRegistrar,
    ModelInfo,
    ModelRegistrar,
)
from cliproxy.sse import SSEEvent

MakeContainer = Callable[..., Container]
CLIPROXY = Path(sys.executable).parent / "cliproxy"

GOOD_MODULE = """
from cliproxy import hookimpl
from cliproxy.credentials import Credential
from cliproxy.registries import ModelInfo


@hookimpl
def register_models(register, settings):
    register("good", ModelInfo(id="good-1"))


@hookimpl
def credentials_from_config(settings):
    return [Credential(id="good:1", provider="good", executor="good")]
"""
BROKEN_MODULE = "raise ImportError('needs a library that is not installed')\n"
TYPO_MODULE = """
from cliproxy import hookimpl


@hookimpl
def register_executor(register, settings):  # should be register_executors
    raise AssertionError("never called")
"""
BAD_SIGNATURE_MODULE = """
from cliproxy import hookimpl


@hookimpl
def register_models(register, settings, colour):
    raise AssertionError("never called")
"""
RAISING_MODULE = """
from cliproxy import hookimpl


@hookimpl
def register_models(register, settings):
    raise RuntimeError("catalog download failed")
"""


def make_dist(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info dir plus a top-level module."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[cliproxy]\n{entry} = {module}\n")
    (site / f"{module}.py").write_text(source)


DISTS = [
    ("cliproxy-good", "good", "cpt_good_plugin", GOOD_MODULE),
    ("cliproxy-broken", "broken", "cpt_broken_plugin", BROKEN_MODULE),
    ("cliproxy-typo", "typo", "cpt_typo_plugin", TYPO_MODULE),
    ("cliproxy-badsig", "badsig", "cpt_badsig_plugin", BAD_SIGNATURE_MODULE),
    ("cliproxy-raising", "raising", "cpt_raising_plugin", RAISING_MODULE),
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for dist, entry, module, source in DISTS:
        make_dist(site, dist, entry, module, source)
    return site


@pytest.fixture
def on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CLIPROXY_DISABLE_PLUGINS", raising=False)
    yield site
    for _, _, module, _ in DISTS:
        sys.modules.pop(module, None)


def _rows(host: PluginHost) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in host.describe(load_settings(None, host.config_sections().items))}


def test_broken_entry_point_plugins_are_reported_by_name_and_skipped(on_path: Path) -> None:
    host = PluginHost(make_plugin_manager())
    settings = load_settings(None, host.config_sections().items)
    catalog, owners = host.model_catalog(settings)
    # Other installed plugins may contribute too; only this test's dists are checked.
    assert catalog["good"] == [ModelInfo(id="good-1")]
    assert owners["good"] == "good"
    assert "raising" not in owners.values()
    assert [c.id for c in host.credentials_from_config(settings) if c.provider == "good"] == ["good:1"]

    rows = _rows(host)
    assert rows["good"]["error"] is None
    assert rows["good"]["distribution"] == "cliproxy-good"
    assert rows["good"]["version"] == "1.2.3"
    assert rows["good"]["providers"] == ["good"]

    errors = {name: rows[name]["error"] for name in ("broken", "typo", "badsig", "raising")}
    assert errors["broken"] == "import failed: ImportError: needs a library that is not installed"
    assert errors["typo"].startswith("invalid plugin:")
    assert "unknown hook 'register_executor'" in errors["typo"]
    assert errors["badsig"].startswith("invalid plugin:")
    assert "colour" in errors["badsig"]
    assert errors["raising"] == "register_models failed: RuntimeError: catalog download failed"
    # The rejected plugins contribute nothing and are not registered with pluggy at all.
    assert not host.pm.has_plugin("typo")
    assert not host.pm.has_plugin("badsig")
    assert rows["broken"]["distribution"] == "cliproxy-broken"
    assert rows["typo"]["hooks"] == []


async def test_app_builds_and_serves_with_broken_plugins(
    on_path: Path, make_container: MakeContainer, tmp_path: Path
) -> None:
    container = Container()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n")
    container.config.from_dict({"config_path": str(cfg), "hot_reload": False})
    app = create_app(container)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        models = (await client.get("/v1/models")).json()
    assert "good-1" in [m["id"] for m in models["data"]]
    assert container.host().infos["raising"].error is not None


def test_disable_plugins_blocks_by_entry_point_name(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPROXY_DISABLE_PLUGINS", "broken, typo,badsig,raising")
    host = PluginHost(make_plugin_manager())
    rows = _rows(host)
    assert "good" in rows
    assert not {"broken", "typo", "badsig", "raising"} & set(rows)
    assert all(row["error"] is None for row in rows.values())
    # The ``disabled`` argument does the same without the environment.
    monkeypatch.delenv("CLIPROXY_DISABLE_PLUGINS")
    assert "good" not in _rows(PluginHost(make_plugin_manager(disabled=["good"])))


def _cli(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CLIPROXY_")}
    full.update(PYTHONPATH=str(site), **env)
    return subprocess.run(
        [str(CLIPROXY), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_reports_broken_plugins_and_disable_env_hides_them(site: Path, tmp_path: Path) -> None:
    proc = _cli(site, tmp_path, "plugins", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["broken"]["error"].startswith("import failed: ImportError")
    assert rows["good"]["error"] is None
    assert "broken" in proc.stderr  # logged by name too

    proc = _cli(site, tmp_path, "plugins", "list", "--json", CLIPROXY_DISABLE_PLUGINS="broken,typo,badsig,raising")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"good", "cliproxy.formats.builtin"} <= set(rows)
    assert not {"broken", "typo", "badsig", "raising"} & set(rows)
    assert "broken" not in proc.stderr


# ------------------------------------------------------------------------------------------- ad-hoc objects


class Good:
    @hookimpl
    def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
        register("ok", ModelInfo(id="ok-1"))


class BadSignature:
    @hookimpl
    def register_executors(self, register: ExecutorRegistrar, settings: Settings, extra: int) -> None:
        raise AssertionError("never called")


class Typo:
    @hookimpl
    def register_model(self, register: ModelRegistrar, settings: Settings) -> None:
        raise AssertionError("never called")


class Raises:
    @hookimpl
    def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
        raise KeyError("boom")

    @hookimpl
    def credential_from_file(self, path: Path, data: dict[str, Any]) -> Credential | None:
        raise ValueError("cannot parse")


def test_ad_hoc_broken_plugins_are_named_and_skipped() -> None:
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[BadSignature(), Typo(), Raises(), Good()]))
    settings = load_settings(None, host.config_sections().items)
    catalog, _ = host.model_catalog(settings)
    assert list(catalog) == ["ok"]
    assert host.credential_from_file(Path("x.json"), {"type": "x"}) is None
    errors = {name: info.error for name, info in host.infos.items() if not info.builtin}
    assert errors["Good-3"] is None
    assert "extra" in (errors["BadSignature-0"] or "")
    assert "unknown hook 'register_model'" in (errors["Typo-1"] or "")
    assert (errors["Raises-2"] or "").startswith("credential_from_file failed: ValueError: cannot parse") or (
        errors["Raises-2"] or ""
    ).startswith("register_models failed: KeyError")
    described = {row["name"]: row for row in host.describe(settings)}
    assert described["Typo-1"]["error"] == errors["Typo-1"]
    assert described["Good-3"]["providers"] == ["ok"]


class ExecA:
    @hookimpl
    def register_executors(self, register: ExecutorRegistrar, settings: Settings) -> None:
        register("shared", lambda services: NullExecutor())


class ExecB(ExecA):
    pass


class ModelsA:
    @hookimpl
    def register_models(self, register: ModelRegistrar, settings: Settings) -> None:
        register("shared-provider", ModelInfo(id="m"))


class ModelsB(ModelsA):
    pass


class ClaimsOpenAI:
    @hookimpl
    def register_formats(self, register: FormatRegistrar) -> None:
        from cliproxy.formats.openai_chat import CODEC

        register(CODEC)


class NullExecutor:
    name = "shared"
    wire_format = "openai"

    async def execute(self, call: UpstreamCall, cred: Credential) -> UpstreamResponse:
        return UpstreamResponse(200, b"{}")

    async def stream(self, call: UpstreamCall, cred: Credential) -> Any:
        yield SSEEvent(b"{}")


def test_duplicate_registrations_name_both_plugins() -> None:
    settings = load_settings(None, {})
    host = PluginHost(make_plugin_manager(entry_points=False, extra=[ExecA(), ExecB()]))
    with pytest.raises(DuplicateRegistration) as err:
        host.executors(settings)
    assert "executor 'shared'" in str(err.value)
    assert "'ExecA-0'" in str(err.value) and "'ExecB-1'" in str(err.value)

    host = PluginHost(make_plugin_manager(entry_points=False, extra=[ModelsA(), ModelsB()]))
    with pytest.raises(DuplicateRegistration) as err:
        host.model_catalog(settings)
    assert "provider 'shared-provider'" in str(err.value)
    assert "'ModelsA-0'" in str(err.value) and "'ModelsB-1'" in str(err.value)

    host = PluginHost(make_plugin_manager(entry_points=False, extra=[ClaimsOpenAI()]))
    with pytest.raises(DuplicateRegistration) as err:
        host.formats()
    assert "wire format 'openai'" in str(err.value)
    assert "'cliproxy.formats.builtin'" in str(err.value) and "'ClaimsOpenAI-0'" in str(err.value)


def test_registering_the_same_plugin_twice_keeps_the_first(on_path: Path) -> None:
    import cpt_good_plugin  # type: ignore[import-not-found]

    host = PluginHost(make_plugin_manager(extra=[cpt_good_plugin]))
    settings = load_settings(None, host.config_sections().items)
    # The duplicate is rejected by name, and the original registration (entry point "good") still works.
    assert host.pm.get_plugin("good") is cpt_good_plugin
    assert "already registered" in (host.infos["cpt_good_plugin"].error or "")
    assert host.model_catalog(settings)[0]["good"] == [ModelInfo(id="good-1")]
