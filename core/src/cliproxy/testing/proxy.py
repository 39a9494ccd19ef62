"""Run a whole cliproxy server on loopback from a config text, for end-to-end tests."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dependency_injector import providers

from ..app import create_app
from ..container import Container
from ..plugins import make_plugin_manager
from .loopback import serve_on_loopback

__all__ = ["ProxyHandle", "build_container", "run_proxy"]


@dataclass(slots=True)
class ProxyHandle:
    url: str
    container: Container
    config_path: Path
    app: Any = None

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def build_container(
    config_path: Path,
    *,
    plugins: Iterable[object] = (),
    entry_points: bool = True,
    overrides: dict[str, Any] | None = None,
) -> Container:
    container = Container()
    container.config.from_dict({"config_path": str(config_path), "cli_overrides": overrides})
    extra = list(plugins)
    container.plugin_manager.override(providers.Singleton(make_plugin_manager, entry_points=entry_points, extra=extra))
    return container


@asynccontextmanager
async def run_proxy(
    config: str,
    *,
    directory: Path | None = None,
    plugins: Iterable[object] = (),
    entry_points: bool = True,
    container: Container | None = None,
) -> AsyncIterator[ProxyHandle]:
    """Write ``config`` to ``config.yaml`` (``auth-dir`` defaults to a private temp dir) and serve it."""
    with tempfile.TemporaryDirectory(prefix="cliproxy-test-") as tmp:
        base = directory or Path(tmp)
        if "auth-dir" not in config:
            config = f"auth-dir: {str(base / 'auths')!r}\n" + config
        path = base / "config.yaml"
        path.write_text(config)
        c = container or build_container(path, plugins=plugins, entry_points=entry_points)
        app = create_app(c)
        async with serve_on_loopback(app) as url:
            yield ProxyHandle(url, c, path, app)
