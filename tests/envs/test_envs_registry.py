"""make_env / env_spec by name: unknown names and options refused, optional packages named when absent."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepgm.envs import AreaResize, EnvSpec, env_names, env_options, env_spec, lateral_move, make_env
from deepgm.errors import ConfigError, ShapeError


def test_env_names_lists_the_three_games() -> None:
    assert env_names() == ("dodge", "take-cover", "car-racing")


def test_unknown_env_name_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="name must be one of dodge, take-cover, car-racing, got 'doom'"):
        make_env("doom")


@pytest.mark.parametrize("name", ["dodge", "take-cover", "car-racing"])
def test_unknown_option_is_refused_with_the_valid_options(name: str) -> None:
    with pytest.raises(ConfigError, match=r"option must be one of .*max_steps.*size.*got 'colour'"):
        make_env(name, colour="red")


def test_env_spec_needs_no_game() -> None:
    assert env_spec("take-cover", size=32) == EnvSpec((32, 32, 3), 1, 2100)
    assert env_spec("car-racing") == EnvSpec((64, 64, 3), 3, 1000)
    assert env_spec("dodge", max_steps=50).max_steps == 50
    with pytest.raises(ConfigError, match="size"):
        env_spec("dodge", size=2)


def test_env_options_fill_the_defaults() -> None:
    assert env_options("dodge", size=16) == {**env_options("dodge"), "size": 16}
    assert env_options("take-cover")["resolution"] == "160x120"


def test_lateral_move_thresholds_at_a_third() -> None:
    assert [lateral_move(a) for a in (-1.0, -0.34, -0.33, 0.33, 0.34, 1.0)] == [-1, -1, 0, 0, 1, 1]


def test_area_resize_averages_areas_and_checks_the_shape() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = AreaResize(120, 160, 40)(frame)  # integer factors: 3x4 blocks
    blocks = frame.reshape(40, 3, 40, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert out.dtype == np.uint8 and out.shape == (40, 40, 3)
    assert np.abs(out - blocks).max() <= 0.5 + 1e-3
    flat = np.full((120, 160, 3), 77, np.uint8)
    assert np.all(AreaResize(120, 160, 64)(flat) == 77)  # fractional taps still sum to one
    with pytest.raises(ShapeError, match=r"\(120, 160\)"):
        AreaResize(120, 160, 64)(np.zeros((96, 96, 3), np.uint8))


def test_without_gymnasium_the_package_imports_and_making_an_env_names_the_extra() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["gymnasium"] = None  # as if not installed
        import deepgm.envs as e
        assert e.env_spec("dodge").action_dim == 1
        try:
            e.make_env("dodge")
        except ImportError as err:
            print("ImportError:", err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout and 'pip install "deepgm[worldmodels]"' in out.stdout
