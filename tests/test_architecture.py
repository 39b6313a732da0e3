"""The package map of README.md's "Architecture" section, checked against the code.

Each package of ``deepgm`` has a layer; a module may import deepgm packages of its own layer or lower
ones, never higher ones. Source files stay short enough to read.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepgm"
README = Path(__file__).resolve().parents[1] / "README.md"

# low → high; the README's architecture table lists the same order
LAYERS: list[str] = [
    "errors", "io", "nn", "viz", "distributions", "flows", "losses", "data", "envs", "metrics", "training",
    "models", "inference", "zoo", "worldmodels", "cli",
]
MAX_LINES = 500


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "deepgm" and node.level == 0:
            names = [f"deepgm.{a.name}" for a in node.names]  # from deepgm import viz
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            parts = n.split(".")
            if parts[0] == "deepgm" and len(parts) > 1:
                found.add(parts[1])
    return found


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__main__.py")


def test_every_package_has_a_layer() -> None:
    packages = {_package_of(p) for p in _sources()} - {"__init__"}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    own = _package_of(path)
    if own == "__init__":
        return
    rank = LAYERS.index(own)
    higher = sorted(p for p in _imported_packages(path) if p in LAYERS and LAYERS.index(p) > rank)
    assert not higher, f"{path.relative_to(SRC)} ({own}) imports the higher layer(s) {higher}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_source_files_are_at_most_500_lines(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(SRC)} has {n} lines (at most {MAX_LINES})"


def test_readme_lists_the_layers_in_order() -> None:
    section = README.read_text().split("## Architecture", 1)
    assert len(section) == 2, "README.md has no '## Architecture' section"
    body = section[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `deepgm\.(\w+)`", body, flags=re.M)
    assert listed == LAYERS, f"README's architecture table lists {listed}, the code's layers are {LAYERS}"
