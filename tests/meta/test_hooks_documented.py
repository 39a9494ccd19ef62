"""Hook hygiene (datasette style): every hookspec is documented with its exact signature and has a test.

Signatures are derived from the hookspec functions themselves, so changing a hook without updating
``docs/plugins/hooks.md`` fails here; and every hook needs a ``test_hook_<name>`` somewhere in the test tree.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cliproxy import hookspecs
from cliproxy.config import load_settings
from cliproxy.plugins import PluginHost, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
HOOKS_MD = ROOT / "docs" / "plugins" / "hooks.md"
TEST_DIRS = [ROOT / "tests", ROOT / "core" / "tests"]


def _hookspecs() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and getattr(fn, "cliproxy_spec", None) is not None
    }


HOOKS = _hookspecs()


def signature_line(fn: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return`` with annotations as written (they are strings: PEP 563)."""
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {fn.__name__}({params}) -> {sig.return_annotation}"


def _sections() -> dict[str, str]:
    text = HOOKS_MD.read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_hookspecs_found() -> None:
    assert len(HOOKS) >= 11
    assert "register_config" in HOOKS
    assert signature_line(HOOKS["credential_from_file"]) == (
        "def credential_from_file(path: Path, data: dict[str, Any]) -> Credential | None"
    )


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_exact_signature(name: str) -> None:
    sections = _sections()
    assert name in sections, f"docs/plugins/hooks.md has no '## {name}' heading"
    expected = f"```python\n{signature_line(HOOKS[name])}\n```"
    assert expected in sections[name], f"'## {name}' must show exactly:\n{expected}"


def test_no_documented_hook_that_does_not_exist() -> None:
    assert set(_sections()) <= set(HOOKS)


def _test_names() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:async\s+)?def\s+(test_hook_\w+)\s*\(", re.M)
    for base in TEST_DIRS:
        for path in base.rglob("*.py"):
            names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_test(name: str) -> None:
    assert f"test_hook_{name}" in _test_names(), f"no test named test_hook_{name} under tests/ or core/tests/"


def _snippets() -> list[tuple[str, str]]:
    out = []
    for name, body in _sections().items():
        for block in re.findall(r"```python\n(.*?)```", body, flags=re.S):
            if "@hookimpl" in block:
                out.append((name, block))
    return out


@pytest.mark.parametrize(("name", "source"), _snippets(), ids=[n for n, _ in _snippets()])
def test_doc_snippet_is_a_valid_plugin(name: str, source: str) -> None:
    """Each snippet, as a module, registers cleanly and implements the hook it documents."""
    # A relative import stands for the plugin's own module: replace it by a stub with a ``name``.
    source = re.sub(r"^from \.\w+ import (\w+).*$", r"\1 = type('\1', (), {'name': 'acme'})", source, flags=re.M)
    module = types.ModuleType(f"docs_snippet_{name}")
    sys.modules[module.__name__] = module  # dataclass/msgspec resolution needs the module importable
    try:
        exec(compile(source, f"hooks.md#{name}", "exec"), module.__dict__)
        host = PluginHost(make_plugin_manager(entry_points=False, extra=[module]))
        assert name in [c.name for c in host.pm.get_hookcallers(module) or []]
        host.describe(load_settings(None, host.config_sections().items))  # runs the registering hooks
        info = host.infos[module.__name__]
        assert info.error is None, info.error
    finally:
        del sys.modules[module.__name__]
