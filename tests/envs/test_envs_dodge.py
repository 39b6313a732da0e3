"""Dodge: the env convention (spaces, dtypes, seeding), its rules, and a learnable signal in its frames."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="the envs are gymnasium.Env: pip install 'deepgm[worldmodels]'")

from gymnasium.spaces import Box  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

from deepgm.envs import RandomPolicy, make_env, run_episode  # noqa: E402
from deepgm.envs.dodge import AGENT_COLOR, Dodge, heuristic_action  # noqa: E402
from deepgm.errors import ConfigError, ShapeError  # noqa: E402


def _frames(env: Dodge, seed: int, actions: np.ndarray) -> np.ndarray:
    frame, _ = env.reset(seed=seed)
    out = [frame]
    for a in actions:
        frame, _, terminated, truncated, _ = env.step(a)
        out.append(frame)
        if terminated or truncated:
            break
    return np.stack(out)


def test_dodge_spaces_frames_and_rewards_follow_the_convention() -> None:
    env = make_env("dodge", size=16)
    assert env.observation_space == Box(0, 255, (16, 16, 3), np.uint8)
    assert env.action_space == Box(-1.0, 1.0, (1,), np.float32)
    frame, info = env.reset(seed=0)
    assert frame.dtype == np.uint8 and frame.shape == (16, 16, 3) and info == {"steps": 0}
    frame, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
    assert env.observation_space.contains(frame) and reward == 1.0 and info["steps"] == 1
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    rendered = env.render()
    assert rendered is not None and np.array_equal(rendered, frame)


def test_dodge_passes_gymnasiums_env_checker() -> None:
    check_env(Dodge(size=16), skip_render_check=True)


def test_dodge_replays_under_the_same_seed_and_differs_under_another() -> None:
    env = Dodge(size=16)
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 1)).astype(np.float32)
    a, b, c = _frames(env, 3, actions), _frames(Dodge(size=16), 3, actions), _frames(env, 4, actions)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_dodge_moves_the_block_by_the_thresholded_action() -> None:
    env = Dodge(size=32, spawn_prob=0.0)
    env.reset(seed=0)
    x0 = env.agent_x
    env.step(np.array([0.3], np.float32))  # inside (-1/3, 1/3): stays
    assert env.agent_x == x0
    env.step(np.array([-0.4], np.float32))
    assert env.agent_x == pytest.approx(max(x0 - env.agent_speed, 0.08))
    env.step(np.array([5.0], np.float32))  # clipped to 1: right
    assert env.agent_x == pytest.approx(x0)


def test_dodge_truncates_at_max_steps_without_fireballs() -> None:
    env = Dodge(size=16, max_steps=7, spawn_prob=0.0)
    ep = run_episode(env, RandomPolicy(1, 0), seed=0)
    assert len(ep.reward) == 7 and not ep.terminated
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(np.zeros(1, np.float32))


def test_dodge_ends_by_death_when_a_fireball_lands_on_the_block() -> None:
    env = Dodge(size=16, spawn_prob=1.0, max_steps=300)  # a fireball every step: nowhere to hide for long
    ep = run_episode(env, lambda f: np.zeros(1, np.float32), seed=0)
    assert ep.terminated and len(ep.reward) < 100


def test_dodge_draws_the_block_at_its_place() -> None:
    env = Dodge(size=32, spawn_prob=0.0)
    frame, _ = env.reset(seed=1)
    green = np.all(np.abs(frame.astype(int) - AGENT_COLOR) < 30, axis=-1)
    rows, cols = np.nonzero(green)
    assert rows.min() >= 26 and abs((cols.mean() + 0.5) / 32 - env.agent_x) < 0.04


def test_heuristic_controller_survives_clearly_longer_than_random() -> None:
    env = Dodge(size=32)
    random_steps = [len(run_episode(env, RandomPolicy(1, [i, 1]), seed=i).reward) for i in range(20)]
    heuristic_steps = [len(run_episode(env, heuristic_action, seed=i).reward) for i in range(20)]
    assert np.mean(random_steps) < 80
    assert np.mean(heuristic_steps) > 3 * np.mean(random_steps)


@pytest.mark.parametrize("option, value", [("size", 4), ("size", 16.0), ("max_steps", 0), ("spawn_prob", 1.5),
                                           ("radius", -0.1), ("agent_speed", "fast")])
def test_dodge_refuses_bad_options_by_name(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        Dodge(**{option: value})  # type: ignore[arg-type]


def test_dodge_refuses_actions_of_the_wrong_shape_or_not_finite() -> None:
    env = Dodge(size=16)
    env.reset(seed=0)
    with pytest.raises(ShapeError, match=r"\(1,\)"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], np.float32))
    with pytest.raises(ShapeError, match="frame"):
        heuristic_action(np.zeros((16, 16), np.uint8))
