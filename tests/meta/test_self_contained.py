"""The test suite runs from a bare clone: no test reaches for files beside or above the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_DIRS = [ROOT / "tests", ROOT / "core" / "tests", *sorted((ROOT / "plugins").glob("*/tests"))]
#: ``Path(__file__).resolve().parents[N]`` / ``HERE.parents[N]``: where the file climbs to.
PARENTS = re.compile(r"(?:__file__\)\.resolve\(\)|HERE)\.parents\[(\d+)\]")
#: A path that starts above the repository root, or the specification checkout that sits beside it.
OUTSIDE = re.compile(r"""["'](?:\.\./|/work/shared)|/ ["']shared["']""")


def _test_files() -> list[Path]:
    return [p for d in TEST_DIRS for p in d.rglob("*.py") if ".venv" not in p.parts]


def test_no_test_climbs_above_the_repository() -> None:
    files = _test_files()
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        here = path.parent
        for m in PARENTS.finditer(text):
            # ``HERE`` is the file's directory, ``__file__`` the file itself; both must stay inside the clone.
            base = here if m.group(0).startswith("HERE") else path
            target = base.parents[int(m.group(1))]
            assert target == ROOT or ROOT in target.parents, f"{path.relative_to(ROOT)} reads {target}"
        for m in OUTSIDE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            raise AssertionError(f"{path.relative_to(ROOT)}:{line} names a path outside the repository")


def test_reference_example_config_is_part_of_the_repository() -> None:
    data = ROOT / "core" / "tests" / "data" / "reference-example-config.yaml"
    assert data.is_file() and "openai-compatibility:" in data.read_text()
