"""collect_rollouts / load_rollouts on Dodge: the shard format, workers, resuming, refusals, bad files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="the envs are gymnasium.Env: pip install 'deepgm[worldmodels]'")

import deepgm.envs.rollouts as rollouts_module  # noqa: E402
from deepgm.envs import (  # noqa: E402
    RandomPolicy,
    RolloutFormatError,
    collect_rollouts,
    episode_returns,
    iter_rollout_shards,
    load_rollouts,
    make_env,
    run_episode,
)
from deepgm.errors import ConfigError  # noqa: E402

OPTS = {"size": 16, "max_steps": 60}


def _collect(folder: Path, episodes: int = 5, **kw: object) -> Path:
    args: dict[str, object] = {"env_options": OPTS, "shard_episodes": 2, "progress": False, **kw}
    return collect_rollouts("dodge", folder, episodes, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _collect(tmp_path_factory.mktemp("rollouts"))


def test_shards_hold_the_episodes_in_the_documented_arrays(collected: Path) -> None:
    assert sorted(p.name for p in collected.iterdir()) == ["manifest.json", "shard-00000.npz", "shard-00001.npz",
                                                           "shard-00002.npz"]
    with np.load(collected / "shard-00001.npz") as z:
        arrays = {k: z[k] for k in z.files}
    n = int(arrays["lengths"].sum())
    assert arrays["obs"].dtype == np.uint8 and arrays["obs"].shape == (n, 16, 16, 3)
    assert arrays["action"].dtype == np.float32 and arrays["action"].shape == (n, 1)
    assert arrays["reward"].dtype == np.float32 and arrays["reward"].shape == (n,)
    assert arrays["lengths"].dtype == np.int64 and arrays["terminated"].dtype == np.bool_
    assert arrays["episode"].tolist() == [2, 3]
    manifest = json.loads((collected / "manifest.json").read_text())
    assert manifest["episodes"] == 5 and manifest["env_options"]["size"] == 16
    assert manifest["shards"]["shard-00002.npz"] == {"first": 4, "episodes": 1,
                                                     "frames": int(load_rollouts(collected).lengths[4])}


def test_loaded_rollouts_replay_each_episode_of_the_env(collected: Path) -> None:
    data = load_rollouts(collected)
    assert data.n_episodes == 5 and data.episode.tolist() == [0, 1, 2, 3, 4]
    assert data.starts.tolist() == np.concatenate([[0], np.cumsum(data.lengths)[:-1]]).tolist()
    env = make_env("dodge", **OPTS)
    for ep in data.episodes():
        again = run_episode(env, RandomPolicy(1, [ep.number, 1]), seed=ep.number)  # seed + i with seed 0
        assert np.array_equal(again.obs, ep.obs) and np.array_equal(again.action, ep.action)
        assert again.terminated == ep.terminated
    assert np.allclose(data.returns(), data.lengths) and np.allclose(episode_returns(collected), data.lengths)
    assert data.terminated[data.lengths < 60].all() and not data.terminated[data.lengths == 60].any()
    assert load_rollouts(collected, max_episodes=3).n_frames == int(data.lengths[:3].sum())
    assert [p.n_episodes for p in iter_rollout_shards(collected)] == [2, 2, 1]


def test_two_workers_write_the_same_bytes_as_one(collected: Path, tmp_path: Path) -> None:
    two = _collect(tmp_path / "two", workers=2)
    for name in ("shard-00000.npz", "shard-00001.npz", "shard-00002.npz"):
        assert (two / name).read_bytes() == (collected / name).read_bytes(), name


def test_resume_collects_only_the_missing_shards_and_extends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _collect(tmp_path / "r", episodes=5)
    done: list[str] = []
    original = rollouts_module._collect_shard

    def counting(task, on_episode=None):  # type: ignore[no-untyped-def]
        done.append(task.name)
        return original(task, on_episode)

    monkeypatch.setattr(rollouts_module, "_collect_shard", counting)
    first = (folder / "shard-00000.npz").read_bytes()
    (folder / "shard-00001.npz").unlink()
    _collect(folder, episodes=5)
    assert done == ["shard-00001.npz"]
    done.clear()
    _collect(folder, episodes=5)
    assert done == []
    _collect(folder, episodes=7)  # the short last shard is redone whole, then a new one
    assert done == ["shard-00002.npz", "shard-00003.npz"]
    assert (folder / "shard-00000.npz").read_bytes() == first
    assert load_rollouts(folder).episode.tolist() == list(range(7))


@pytest.mark.parametrize("change, setting", [({"seed": 1}, "seed"), ({"shard_episodes": 3}, "shard_episodes"),
                                             ({"env_options": {"size": 32}}, "env_options"), ({"repeat": 2}, "repeat")])
def test_other_settings_are_refused_by_name(collected: Path, change: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError, match=f"collect_rollouts: {setting} must be"):
        _collect(collected, 5, **change)


def test_defaults_spelt_out_are_the_same_settings(collected: Path) -> None:
    _collect(collected, env_options={**OPTS, "spawn_prob": 0.08})  # the default: nothing to do, no error


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "delete", "wrong-array"])
def test_a_bad_shard_is_refused_by_name(collected: Path, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for p in collected.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    shard = folder / "shard-00001.npz"
    raw = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(raw[: len(raw) // 2])
    elif damage == "corrupt":
        with zipfile.ZipFile(shard) as zf:
            offset = zf.getinfo("obs.npy").header_offset + 200
        shard.write_bytes(raw[:offset] + bytes(b ^ 0xFF for b in raw[offset:offset + 64]) + raw[offset + 64:])
    elif damage == "delete":
        shard.unlink()
    else:
        with np.load(collected / "shard-00001.npz") as z:
            arrays = {k: z[k] for k in z.files}
        arrays["action"] = arrays["action"][:, :0]
        np.savez(shard.with_suffix(""), **arrays)
    with pytest.raises(RolloutFormatError, match="shard-00001.npz"):
        load_rollouts(folder)


def test_a_missing_or_malformed_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RolloutFormatError, match="no manifest"):
        load_rollouts(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RolloutFormatError, match="manifest.json: not valid JSON"):
        load_rollouts(tmp_path)


@pytest.mark.parametrize("kw, option", [({"episodes": 0}, "episodes"), ({"workers": 0}, "workers"),
                                        ({"policy": "greedy"}, "policy"), ({"seed": -1}, "seed")])
def test_bad_arguments_are_refused_by_name(tmp_path: Path, kw: dict[str, object], option: str) -> None:
    args: dict[str, object] = {"episodes": 2, **kw}
    with pytest.raises(ConfigError, match=option):
        collect_rollouts("dodge", tmp_path, progress=False, **args)  # type: ignore[arg-type]
    assert not (tmp_path / "manifest.json").exists()


def test_random_policy_repeats_its_action_for_repeat_steps() -> None:
    policy = RandomPolicy(2, 0, repeat=3)
    actions = np.stack([policy(np.zeros(1)) for _ in range(6)])
    assert actions.dtype == np.float32 and np.all(np.abs(actions) <= 1)
    assert (actions[0] == actions[2]).all() and not (actions[2] == actions[3]).all()
    assert (actions[3] == actions[5]).all()


def _runs(actions: np.ndarray) -> list[int]:
    """The lengths of the runs of equal consecutive actions."""
    change = np.flatnonzero(np.any(actions[1:] != actions[:-1], axis=1)) + 1
    return np.diff(np.concatenate([[0], change, [len(actions)]])).tolist()


def test_held_policy_holds_each_action_for_one_to_repeat_steps() -> None:
    policy = RandomPolicy(1, 0, repeat=10, held=True)
    runs = _runs(np.stack([policy(None) for _ in range(5000)]))[:-1]  # the last run may be cut short
    assert min(runs) >= 1 and max(runs) == 10
    assert np.mean(runs) == pytest.approx(5.5, abs=0.3)  # uniform on 1..10
    assert len(set(runs)) == 10


def test_collection_records_its_policy_and_refuses_another(tmp_path: Path) -> None:
    held = collect_rollouts("dodge", tmp_path / "h", episodes=2, env_options=OPTS, policy="held", repeat=10,
                            progress=False)
    data = load_rollouts(held)
    assert max(_runs(data.action[:int(data.lengths[0])])) > 1
    with pytest.raises(ConfigError, match="collect_rollouts: policy must be 'held'"):
        collect_rollouts("dodge", held, episodes=2, env_options=OPTS, policy="random", repeat=10, progress=False)
