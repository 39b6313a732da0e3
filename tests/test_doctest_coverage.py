"""Every public module of the core carries a runnable example, and the test suite runs them.

The core is the packages a new model family is written with (distributions, losses, flows, models, nn)
and the two modules below them (io, errors). Each package and each of its public modules (no leading
underscore) must hold at least one ``>>>`` example in its own docstrings: the module's, or a public
function's, class's or method's defined in it. ``pytest`` collects those examples from ``src/deepgm``
(``--doctest-modules`` in pyproject.toml), so they are checked, not only shown.
"""

from __future__ import annotations

import doctest
import importlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "deepgm"
CORE_PACKAGES = ("distributions", "losses", "flows", "models", "nn")
CORE_MODULES = ("io", "errors")


def core_modules() -> list[str]:
    """The dotted names of the core's public modules, found on disk (so a new module is included)."""
    names = [f"deepgm.{m}" for m in CORE_MODULES]
    for pkg in CORE_PACKAGES:
        names.append(f"deepgm.{pkg}")  # the package's own docstring (its __init__)
        for path in sorted((SRC / pkg).rglob("*.py")):
            rel = path.relative_to(SRC).with_suffix("")
            if any(part.startswith("_") for part in rel.parts):
                continue  # __init__ and private modules
            names.append("deepgm." + ".".join(rel.parts))
    return names


def public_examples(module_name: str) -> list[str]:
    """The names of the docstrings with examples that ``module_name`` itself defines (not the objects it
    imports from elsewhere), skipping private ones (``_name`` anywhere in the path)."""
    module = importlib.import_module(module_name)  # every core module imports with the core dependencies
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    out = []
    for t in tests:
        parts = t.name[len(module_name):].lstrip(".").split(".") if t.name != module_name else []
        if t.examples and not any(p.startswith("_") for p in parts):
            out.append(t.name)
    return out


def test_the_core_is_found() -> None:
    found = core_modules()
    for expected in ("deepgm.losses", "deepgm.distributions.base", "deepgm.losses.core", "deepgm.flows.coupling",
                     "deepgm.models.model", "deepgm.nn.mlp", "deepgm.io", "deepgm.errors"):
        assert expected in found
    assert not any(n.rsplit(".", 1)[-1].startswith("_") for n in found)


@pytest.mark.parametrize("module_name", core_modules())
def test_public_module_has_an_example(module_name: str) -> None:
    assert public_examples(module_name), (
        f"{module_name} has no '>>>' example in its module docstring or a public function's or class's "
        f"docstring: add a small one that checks something (a shape, a closed-form value, an error)"
    )


def test_the_examples_run_with_the_tests() -> None:
    """The test command (``pytest``, ``bash scripts/test.sh``) collects the docstrings of src/deepgm."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "src/deepgm" in config["testpaths"]
    assert "--doctest-modules" in config["addopts"].split()
