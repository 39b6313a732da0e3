"""The two real games, when their packages are installed: Take Cover (vizdoom) and CarRacing (box2d)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="the envs are gymnasium.Env: pip install 'deepgm[worldmodels]'")

from gymnasium.spaces import Box  # noqa: E402

from deepgm.envs import RandomPolicy, make_env, run_episode  # noqa: E402
from deepgm.envs.car_racing import car_controls  # noqa: E402

HAS_BOX2D = importlib.util.find_spec("Box2D") is not None


def _play(env, seed: int, steps: int) -> tuple[np.ndarray, list[float], bool]:  # type: ignore[no-untyped-def]
    policy = RandomPolicy(env.action_dim, [seed, 1])
    frame, _ = env.reset(seed=seed)
    frames, rewards, ended = [frame], [], False
    for _ in range(steps):
        frame, reward, terminated, truncated, _ = env.step(policy(frame))
        frames.append(frame)
        rewards.append(reward)
        if terminated or truncated:
            ended = True
            break
    return np.stack(frames), rewards, ended


def test_take_cover_follows_the_convention_and_replays_under_its_seed(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("vizdoom", reason="Take Cover needs vizdoom: pip install 'deepgm[worldmodels]'")
    monkeypatch.chdir(tmp_path)
    env = make_env("take-cover", size=16, max_steps=60)
    try:
        assert env.observation_space == Box(0, 255, (16, 16, 3), np.uint8)
        assert env.action_space == Box(-1.0, 1.0, (1,), np.float32)
        a, rewards, ended = _play(env, 5, 100)
        b, _, _ = _play(env, 5, 100)
        c, _, _ = _play(env, 6, 100)
        assert a.dtype == np.uint8 and a.shape[1:] == (16, 16, 3) and a.std() > 5  # a picture, not a blank
        assert np.array_equal(a, b) and (a.shape != c.shape or not np.array_equal(a, c))
        assert set(rewards) == {1.0} and ended and len(rewards) <= 60
    finally:
        env.close()
        env.close()
    assert list(tmp_path.iterdir()) == []  # the engine's files went to its own folder, removed by close


def test_take_cover_episodes_end_by_death_or_truncate_at_max_steps(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("vizdoom", reason="Take Cover needs vizdoom: pip install 'deepgm[worldmodels]'")
    monkeypatch.chdir(tmp_path)
    env, capped = make_env("take-cover", size=8, max_steps=400), make_env("take-cover", size=8, max_steps=5)
    try:
        ep = run_episode(env, RandomPolicy(1, [0, 1]), seed=0)  # a random policy dies within ~400 tics
        short = run_episode(capped, RandomPolicy(1, 0), seed=0)
    finally:
        env.close()
        capped.close()
    assert ep.terminated and 20 < len(ep.reward) < 400
    assert not short.terminated and len(short.reward) == 5


def test_take_cover_without_vizdoom_names_the_extra() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["vizdoom"] = None  # as if not installed
        from deepgm.envs import make_env
        try:
            make_env("take-cover")
        except ImportError as err:
            print("ImportError:", err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    assert "'vizdoom'" in out.stdout and 'pip install "deepgm[worldmodels]"' in out.stdout


def test_car_controls_map_gas_and_brake_to_the_unit_interval() -> None:
    assert car_controls(np.array([0.5, -1.0, 1.0], np.float32)).tolist() == [0.5, 0.0, 1.0]
    assert car_controls(np.array([-1.0, 0.0, 0.0], np.float32)).tolist() == [-1.0, 0.5, 0.5]


@pytest.mark.skipif(HAS_BOX2D, reason="box2d is installed: the missing-package message cannot be seen")
def test_car_racing_without_box2d_names_what_to_install() -> None:
    with pytest.raises(ImportError, match=r"Box2D.*deepgm\[carracing\]"):
        make_env("car-racing")


@pytest.mark.skipif(not HAS_BOX2D, reason="CarRacing needs box2d: pip install 'deepgm[carracing]'")
def test_car_racing_follows_the_convention_and_replays_under_its_seed() -> None:
    env = make_env("car-racing", size=16, max_steps=30)
    try:
        assert env.observation_space == Box(0, 255, (16, 16, 3), np.uint8)
        assert env.action_space == Box(-1.0, 1.0, (3,), np.float32)
        a, rewards, ended = _play(env, 2, 40)
        b, _, _ = _play(env, 2, 40)
        assert a.dtype == np.uint8 and a.shape == (31, 16, 16, 3)
        assert np.array_equal(a, b) and ended and len(rewards) == 30
    finally:
        env.close()
