"""Fixtures for plugin tests: a container built from ad-hoc plugins only (no installed entry points)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dependency_injector import providers

from cliproxy.container import Container
from cliproxy.plugins import make_plugin_manager

MakeContainer = Callable[..., Container]


@pytest.fixture
def make_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeContainer:
    """``make_container(*plugins, config="yaml")``: a fresh container whose plugin manager is overridden.

    The config file always points ``auth-dir`` into ``tmp_path`` so a developer's real credentials never leak
    into a test.
    """
    monkeypatch.delenv("CLIPROXY_DISABLE_PLUGINS", raising=False)

    def make(*plugins: object, config: str = "") -> Container:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(f"auth-dir: {tmp_path / 'auth'}\n{config}")
        container = Container()
        container.config.from_dict({"config_path": str(cfg), "hot_reload": False})
        pm = make_plugin_manager(entry_points=False, extra=plugins)
        container.plugin_manager.override(providers.Object(pm))
        return container

    return make
