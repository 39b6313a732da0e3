"""Random-policy rollouts into a folder of shards: :func:`collect_rollouts`, and one episode: :func:`run_episode`.

The random policy (:class:`RandomPolicy`) draws a fresh action uniformly in ``[-1, 1]^A`` every step
(every ``repeat`` steps with ``repeat > 1``, holding it in between); the ``"held"`` policy holds each one
for a random number of steps, uniform in ``1..repeat`` (World Models' "more diverse random policy", with
``repeat = 10``: sustained moves reach the walls, which a policy that changes its mind every step seldom
does, so M learns what happens there). Episode ``i`` is reset with the seed
``seed + i`` and its policy draws from ``numpy.random.default_rng([seed + i, 1])``, so an episode's data
depend on ``seed`` and ``i`` only, never on the number of workers nor on which shard ran first.

Episodes are grouped in shards of ``shard_episodes`` (files described in :mod:`deepgm.envs.shards`);
each shard is collected whole by one process in a fresh env and written atomically, then recorded in
``manifest.json``. Collection resumes: a second call collects only the shards that are not recorded,
asking for more episodes extends the data (the last, short shard is collected again, whole), and a call
with other settings is refused. One collection per folder at a time.

>>> import tempfile
>>> from deepgm.envs import load_rollouts
>>> folder = collect_rollouts("dodge", tempfile.mkdtemp(), episodes=3, env_options={"size": 16},
...                           shard_episodes=2, progress=False)
>>> data = load_rollouts(folder)
>>> data.n_episodes, data.obs.shape[1:], data.action.shape[1], sorted(p.name for p in folder.iterdir())
(3, (16, 16, 3), 1, ['manifest.json', 'shard-00000.npz', 'shard-00001.npz'])
>>> bool(data.returns().sum() == data.n_frames)  # Dodge pays 1 a step
True
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepgm.errors import ConfigError

from .base import FrameEnv, check_positive_int
from .registry import env_options as resolve_options
from .registry import env_spec, make_env
from .shards import FORMAT, FORMAT_VERSION, MANIFEST, Episode, read_manifest, shard_name, write_shard

__all__ = ["collect_rollouts", "run_episode", "RandomPolicy", "POLICIES"]

POLICIES = ("random", "held")
_SETTINGS = ("env", "env_options", "seed", "shard_episodes", "policy", "repeat")  # must match to resume


class RandomPolicy:
    """Uniform actions in ``[-1, 1]^A`` float32 from ``numpy.random.default_rng(seed)``, a new one every
    ``repeat`` calls (the same action in between), or with ``held=True`` after a number of calls drawn
    uniformly in ``1..repeat`` for each action. Call it with the frame (ignored).

    >>> policy = RandomPolicy(1, seed=0, repeat=10, held=True)
    >>> actions = [float(policy(None)[0]) for _ in range(30)]
    >>> len(set(actions)) < 30  # each action held for 1..10 steps
    True
    """

    def __init__(self, action_dim: int, seed: int | list[int], repeat: int = 1, held: bool = False) -> None:
        self.action_dim, self.repeat = action_dim, check_positive_int("RandomPolicy", "repeat", repeat)
        self.held = held
        self._rng = np.random.default_rng(seed)
        self._left = 0  # calls the current action is still held for
        self._action = np.zeros(action_dim, np.float32)

    def __call__(self, frame: np.ndarray | None) -> np.ndarray:
        if self._left == 0:
            self._action = self._rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
            self._left = int(self._rng.integers(1, self.repeat + 1)) if self.held else self.repeat
        self._left -= 1
        return self._action.copy()


def run_episode(env: FrameEnv, policy: Callable[[np.ndarray], np.ndarray], seed: int | None = None,
                number: int = 0) -> Episode:
    """Play one episode of ``env`` from ``reset(seed=seed)`` with ``policy(frame) -> action``, to its end.
    Returns its frames ``(T, S, S, 3)`` (the frame before each action), actions ``(T, A)``, rewards ``(T,)``
    and whether it ended by ``terminated`` (vs truncated); ``number`` is recorded as its number."""
    frame, _ = env.reset(seed=seed)
    frames, actions, rewards = [], [], []
    while True:
        action = np.asarray(policy(frame), dtype=np.float32).reshape(-1)
        frames.append(frame)
        actions.append(action)
        frame, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return Episode(number, np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32), bool(terminated))


@dataclass(frozen=True)
class _ShardTask:
    folder: str
    name: str
    env: str
    env_options: dict[str, Any]
    seed: int
    first: int
    episodes: int
    repeat: int
    policy: str = "random"


def _collect_shard(task: _ShardTask, on_episode: Callable[[], None] | None = None) -> tuple[str, int, int, int]:
    """Collect and write one shard; returns ``(name, first, episodes, frames)``."""
    env = make_env(task.env, **task.env_options)
    try:
        eps = []
        for i in range(task.first, task.first + task.episodes):
            policy = RandomPolicy(env.action_dim, [task.seed + i, 1], task.repeat, held=task.policy == "held")
            eps.append(run_episode(env, policy, seed=task.seed + i, number=i))
            if on_episode is not None:
                on_episode()
    finally:
        env.close()
    arrays = {"obs": np.concatenate([e.obs for e in eps]), "action": np.concatenate([e.action for e in eps]),
              "reward": np.concatenate([e.reward for e in eps]), "lengths": np.array([len(e.reward) for e in eps]),
              "terminated": np.array([e.terminated for e in eps]), "episode": np.array([e.number for e in eps])}
    write_shard(Path(task.folder) / task.name, arrays)
    return task.name, task.first, task.episodes, int(arrays["lengths"].sum())


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]
    except ImportError:  # tqdm is optional: no bar then
        return None
    return tqdm(total=total, desc=desc, unit="episode", dynamic_ncols=True)


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(options))  # tuples become lists, as a manifest reads back
    return out


def _check_args(env: str, episodes: int, workers: int, seed: int, shard_episodes: int, policy: str,
                repeat: int) -> None:
    check_positive_int("collect_rollouts", "episodes", episodes)
    check_positive_int("collect_rollouts", "workers", workers)
    check_positive_int("collect_rollouts", "shard_episodes", shard_episodes)
    check_positive_int("collect_rollouts", "repeat", repeat)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError("collect_rollouts", "seed", "an integer >= 0", seed)
    if policy not in POLICIES:
        raise ConfigError("collect_rollouts", "policy", f"one of {', '.join(POLICIES)}", policy)


def collect_rollouts(env: str, out_dir: str | os.PathLike[str], episodes: int, workers: int = 1, seed: int = 0,
                     env_options: dict[str, Any] | None = None, shard_episodes: int = 50, policy: str = "random",
                     repeat: int = 1, progress: bool = True) -> Path:
    """Collect ``episodes`` random-policy episodes of the env ``env`` (a :func:`~deepgm.envs.make_env`
    name, with ``env_options``) into ``out_dir``; returns ``out_dir`` as a Path.

    ``workers`` processes (spawned; 1: this process) each collect whole shards of ``shard_episodes``.
    The data are the same, byte for byte, for any ``workers``. A folder collected before is resumed:
    only the missing shards are collected, ``episodes`` above the recorded number extend the data (below
    it, the recorded number stands); other ``env``, ``env_options``, ``seed``, ``shard_episodes``,
    ``policy`` or ``repeat`` raise :class:`~deepgm.errors.ConfigError` naming the setting. A tqdm bar
    (if tqdm is installed and ``progress``) counts the episodes. Scripts using ``workers > 1`` need the
    ``if __name__ == "__main__":`` guard of multiprocessing's spawn."""
    _check_args(env, episodes, workers, seed, shard_episodes, policy, repeat)
    resolved = resolve_options(env, **(env_options or {}))  # defaults filled: {} and {"size": 64} are alike
    options = _jsonable(resolved)
    spec = env_spec(env, **resolved)
    folder = Path(out_dir)
    settings = {"env": env, "env_options": options, "seed": int(seed), "shard_episodes": int(shard_episodes),
                "policy": policy, "repeat": int(repeat)}
    if (folder / MANIFEST).exists():
        manifest = read_manifest(folder)
        for key in _SETTINGS:
            if manifest.get(key) != settings[key]:
                raise ConfigError("collect_rollouts", key, f"{manifest.get(key)!r}, the setting recorded in "
                                  f"{folder / MANIFEST} (use another out_dir for other settings)", settings[key])
        manifest["episodes"] = max(int(manifest["episodes"]), int(episodes))
    else:
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, **settings, "episodes": int(episodes),
                    "obs_shape": list(spec.obs_shape), "action_dim": spec.action_dim, "max_steps": spec.max_steps,
                    "shards": {}}
    from deepgm.io import remove_stale_temporaries, write_text_atomic

    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)  # left by a collection that was killed mid-write

    def record(result: tuple[str, int, int, int]) -> None:
        name, first, n, frames = result
        manifest["shards"][name] = {"first": first, "episodes": n, "frames": frames}
        manifest["shards"] = dict(sorted(manifest["shards"].items()))
        write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    total, n = int(manifest["episodes"]), int(shard_episodes)
    tasks = []
    for j in range((total + n - 1) // n):
        first, count = j * n, min(n, total - j * n)
        name = shard_name(j)
        done = manifest["shards"].get(name)
        if done and done.get("first") == first and done.get("episodes") == count and (folder / name).is_file():
            continue
        manifest["shards"].pop(name, None)
        tasks.append(_ShardTask(str(folder), name, env, resolved, int(seed), first, count, int(repeat),
                                policy))
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    bar = _progress_bar(sum(t.episodes for t in tasks), progress, f"{env} rollouts")
    try:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                record(_collect_shard(task, (lambda: bar.update(1)) if bar is not None else None))
        else:
            with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
                for result in pool.imap_unordered(_collect_shard, tasks):
                    record(result)
                    if bar is not None:
                        bar.update(result[2])
    finally:
        if bar is not None:
            bar.close()
    return folder

