"""Every ``plugins/*`` directory is a well-formed provider distribution of the workspace."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def test_there_are_plugins() -> None:
    assert PLUGIN_DIRS, "plugins/ holds no provider distributions"


@pytest.mark.parametrize("plugin_dir", PLUGIN_DIRS, ids=[p.name for p in PLUGIN_DIRS])
def test_plugin_distribution_layout(plugin_dir: Path) -> None:
    pyproject = plugin_dir / "pyproject.toml"
    assert pyproject.is_file(), f"{plugin_dir.name}: no pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    name = plugin_dir.name
    package = f"cliproxy_{name}"

    project = data["project"]
    assert project["name"] == f"cliproxy-{name.replace('_', '-')}"
    assert any(re.match(r"cliproxy\s*[<>=~!]", dep) for dep in project.get("dependencies", [])), (
        f"{name}: must depend on a bounded cliproxy version"
    )

    entry_points = project.get("entry-points", {}).get("cliproxy", {})
    assert entry_points, f"{name}: no [project.entry-points.cliproxy]"
    for target in entry_points.values():
        module = target.split(":", 1)[0]
        assert module.split(".", 1)[0] == package, f"{name}: entry point {target!r} is outside {package}"
        path = plugin_dir / "src" / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
            f"{name}: entry point module {module} does not exist"
        )

    assert (plugin_dir / "src" / package / "__init__.py").is_file(), f"{name}: no src/{package} package"


def test_every_plugin_is_a_workspace_member() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = root["tool"]["uv"]["workspace"]["members"]
    assert "plugins/*" in members or all(f"plugins/{p.name}" in members for p in PLUGIN_DIRS)
