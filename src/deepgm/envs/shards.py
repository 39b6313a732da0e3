"""The files of a rollouts folder, and reading them back: :func:`load_rollouts`, :class:`Rollouts`.

A folder made by :func:`~deepgm.envs.collect_rollouts` holds ``manifest.json`` and shards
``shard-00000.npz``, ``shard-00001.npz``, ... Shard ``j`` holds episodes ``[j*n, (j+1)*n)`` (``n`` =
``shard_episodes``; the last may hold fewer), as a zip of ``.npy`` arrays (``numpy.load`` reads it; written
with fixed timestamps, so the same episodes give the same bytes):

* ``obs`` uint8 ``(N, S, S, 3)``: every frame of its episodes, one after another; frame ``t`` of an
  episode is the one seen before its action ``t`` (an episode's frame after its last action is not kept);
* ``action`` float32 ``(N, A)``: the action taken after each frame; ``reward`` float32 ``(N,)``: its reward;
* ``lengths`` int64 ``(E,)``: the episodes' frame counts (summing to ``N``); ``terminated`` bool ``(E,)``:
  the episode ended in the game (death) rather than at the step limit; ``episode`` int64 ``(E,)``: their
  indices.

``manifest.json`` records the settings (``env``, ``env_options``, ``seed``, ``shard_episodes``,
``policy``, ``repeat``), ``episodes`` asked for, ``obs_shape``, ``action_dim`` and the finished shards
(``{"shard-00000.npz": {"first": 0, "episodes": 50, "frames": 2034}}``).

>>> import tempfile, pathlib, numpy as np
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> arrays = dict(obs=np.zeros((5, 8, 8, 3), np.uint8), action=np.zeros((5, 1), np.float32),
...               reward=np.ones(5, np.float32), lengths=np.array([2, 3]), terminated=np.array([True, False]),
...               episode=np.array([0, 1]))
>>> _ = write_shard(d / "shard-00000.npz", arrays)
>>> sorted(read_shard(d / "shard-00000.npz", (8, 8, 3), 1, first=0, episodes=2))
['action', 'episode', 'lengths', 'obs', 'reward', 'terminated']
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from deepgm.errors import DeepGMError

__all__ = ["RolloutFormatError", "Rollouts", "Episode", "load_rollouts", "iter_rollout_shards", "episode_returns",
           "read_manifest", "read_shard", "write_shard", "shard_name", "MANIFEST", "FORMAT", "FORMAT_VERSION"]

MANIFEST = "manifest.json"
FORMAT, FORMAT_VERSION = "deepgm-rollouts", 1
_FIELDS: dict[str, np.dtype[Any]] = {"obs": np.dtype(np.uint8), "action": np.dtype(np.float32),
                                     "reward": np.dtype(np.float32), "lengths": np.dtype(np.int64),
                                     "terminated": np.dtype(np.bool_), "episode": np.dtype(np.int64)}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the bytes depend on the arrays only


class RolloutFormatError(DeepGMError, ValueError):
    """A rollouts folder's manifest or shard is missing, truncated, corrupt or not what the manifest says;
    the message names the file and what is wrong."""


def shard_name(j: int) -> str:
    """The file name of shard ``j``: ``shard-00007.npz``."""
    return f"shard-{j:05d}.npz"


def write_shard(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` (the shard's fields) to ``path`` atomically, as a deflated zip of ``.npy`` files."""
    from deepgm.io import atomic_write

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for key in _FIELDS:
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key], dtype=_FIELDS[key]),
                                          allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=1)

    return atomic_write(path, write)


def read_shard(path: Path, obs_shape: tuple[int, ...], action_dim: int, first: int, episodes: int,
               fields: tuple[str, ...] = tuple(_FIELDS)) -> dict[str, np.ndarray]:
    """The ``fields`` of the shard at ``path``, checked: dtypes, ``obs`` ``(N, *obs_shape)``, ``action``
    ``(N, action_dim)``, ``lengths`` >= 1 summing to ``N``, ``episode`` = ``first ... first+episodes-1``.
    Anything else (a missing, truncated or corrupt file too) raises :class:`RolloutFormatError`."""
    if not path.is_file():
        raise RolloutFormatError(f"{path}: the shard is missing (the manifest lists it); collect again to redo it")
    want = set(fields) | {"lengths", "episode"}
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(want - set(z.files))
            if missing:
                raise RolloutFormatError(f"{path}: the shard lacks the array(s) {missing}; expected {list(_FIELDS)}")
            out = {k: z[k] for k in _FIELDS if k in want}
    except RolloutFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as err:
        raise RolloutFormatError(f"{path}: truncated or corrupt shard ({type(err).__name__}: {err}); "
                                 "expected a zip of .npy arrays: delete it and collect again") from err
    for k, v in out.items():
        if v.dtype != _FIELDS[k]:
            raise RolloutFormatError(f"{path}: '{k}' has dtype {v.dtype}, expected {_FIELDS[k]}")
    lengths, index = out["lengths"], out["episode"]
    if lengths.ndim != 1 or index.shape != lengths.shape or np.any(lengths < 1):
        raise RolloutFormatError(f"{path}: 'lengths' {lengths.shape} and 'episode' {index.shape} must be (E,) "
                                 "with every length >= 1")
    if not np.array_equal(index, np.arange(first, first + episodes)):
        raise RolloutFormatError(f"{path}: holds the episodes {index.tolist()[:3]}..., expected {first} to "
                                 f"{first + episodes - 1}")
    n = int(lengths.sum())
    shapes = {"obs": (n, *obs_shape), "action": (n, action_dim), "reward": (n,), "terminated": (episodes,)}
    for k, shape in shapes.items():
        if k in out and out[k].shape != shape:
            raise RolloutFormatError(f"{path}: '{k}' has shape {out[k].shape}, expected {shape}")
    return out


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the rollouts folder ``folder`` (RolloutFormatError if it is absent or malformed)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise RolloutFormatError(f"{path}: no manifest: {folder} is not a rollouts folder (collect_rollouts makes one)")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RolloutFormatError(f"{path}: not valid JSON ({err})") from err
    need = ("format", "version", "env", "env_options", "seed", "shard_episodes", "episodes", "obs_shape",
            "action_dim", "shards")
    if not isinstance(m, dict) or m.get("format") != FORMAT or any(k not in m for k in need):
        raise RolloutFormatError(f"{path}: expected a {FORMAT} manifest with the keys {list(need)}")
    if m["version"] != FORMAT_VERSION:
        raise RolloutFormatError(f"{path}: format version {m['version']}, this deepgm reads {FORMAT_VERSION}")
    return m


def _shard_ranges(m: dict[str, Any]) -> list[tuple[str, int, int]]:
    n, total = int(m["shard_episodes"]), int(m["episodes"])
    return [(shard_name(j), j * n, min(n, total - j * n)) for j in range((total + n - 1) // n)]


class Episode(NamedTuple):
    """One episode: its ``number`` (index in the collection), ``obs`` (T, S, S, 3), ``action`` (T, A),
    ``reward`` (T,) and whether it was ``terminated`` (death) rather than truncated."""

    number: int
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: bool


@dataclass(frozen=True)
class Rollouts:
    """Episodes in order, their frames concatenated (the shard fields, over all shards read)."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray
    episode: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def starts(self) -> np.ndarray:
        """``(E,)`` int64: where each episode's first frame is in ``obs``."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def n_frames(self) -> int:
        return int(self.lengths.sum())

    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    def returns(self) -> np.ndarray:
        """``(E,)`` float64: each episode's summed reward (its score)."""
        return _returns(self.reward, self.lengths)

    def episodes(self) -> Iterator[Episode]:
        """Each episode's :class:`Episode` (views into the arrays, no copies)."""
        for i, (s, n) in enumerate(zip(self.starts, self.lengths)):
            sl = slice(int(s), int(s + n))
            yield Episode(int(self.episode[i]), self.obs[sl], self.action[sl], self.reward[sl],
                          bool(self.terminated[i]))

def _returns(reward: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    if len(lengths) == 0:
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.add.reduceat(reward.astype(np.float64), starts)


def iter_rollout_shards(folder: str | os.PathLike[str], fields: tuple[str, ...] = tuple(_FIELDS)) -> Iterator[Rollouts]:
    """The shards of ``folder`` one at a time, in episode order, each as a :class:`Rollouts` (for data too
    big to hold at once). Only ``fields`` are read (``lengths`` and ``episode`` always); the others are
    empty. Every shard the manifest's ``episodes`` need must be there (RolloutFormatError otherwise)."""
    m = read_manifest(folder)
    obs_shape, action_dim = tuple(m["obs_shape"]), int(m["action_dim"])
    missing = [name for name, first, n in _shard_ranges(m) if m["shards"].get(name, {}).get("episodes") != n]
    if missing:
        raise RolloutFormatError(f"{Path(folder) / MANIFEST}: collection unfinished, the shard(s) {missing} are not "
                                 "done; run collect_rollouts again with the same settings to finish it")
    empty = {"obs": np.zeros((0, *obs_shape), np.uint8), "action": np.zeros((0, action_dim), np.float32),
             "reward": np.zeros(0, np.float32), "terminated": np.zeros(0, bool)}
    for name, first, n in _shard_ranges(m):
        arrays = read_shard(Path(folder) / name, obs_shape, action_dim, first, n, fields)
        yield Rollouts(**{**empty, **arrays}, manifest=m)


def load_rollouts(folder: str | os.PathLike[str], max_episodes: int | None = None) -> Rollouts:
    """Every episode of the rollouts folder (or its first ``max_episodes``), in episode order, as one
    :class:`Rollouts`. A missing, truncated or corrupt shard raises :class:`RolloutFormatError` naming it."""
    parts: list[Rollouts] = []
    total = 0
    for part in iter_rollout_shards(folder):
        parts.append(part)
        total += part.n_episodes
        if max_episodes is not None and total >= max_episodes:
            break
    m = read_manifest(folder)
    if not parts:
        obs_shape, a = tuple(m["obs_shape"]), int(m["action_dim"])
        return Rollouts(np.zeros((0, *obs_shape), np.uint8), np.zeros((0, a), np.float32), np.zeros(0, np.float32),
                        np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64), manifest=m)
    out = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _FIELDS}
    if max_episodes is not None and len(out["lengths"]) > max_episodes:
        frames = int(out["lengths"][:max_episodes].sum())
        out = {k: v[:frames] if k in ("obs", "action", "reward") else v[:max_episodes] for k, v in out.items()}
    return Rollouts(**out, manifest=m)


def episode_returns(folder: str | os.PathLike[str]) -> np.ndarray:
    """``(E,)`` float64: each episode's summed reward (its score), reading no frames."""
    parts = list(iter_rollout_shards(folder, fields=("reward",)))
    if not parts:
        return np.zeros(0)
    return np.concatenate([_returns(p.reward, p.lengths) for p in parts])
