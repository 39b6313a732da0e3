"""Sequence data: the padded-sequence container and two seeded video generators.

Every sequence split has one layout, batch first and padded to the split's longest sequence:
``{"x": float32 (N, T_max, *step_shape), "mask": float32 (N, T_max)}``, with ``mask`` 1.0 on real
steps and 0.0 on padding, where ``x`` is 0. Models take the lengths from the mask.

* :func:`pad_sequences` and :class:`SequenceDataset` - that layout, from a list of ``(T_i, *step_shape)``
  sequences, and a dataset serving it (``batch()`` gives the whole split dict).
* :func:`moving_mnist` - MNIST digits drifting in a ``size × size`` frame and bouncing off its edges.
* :func:`bouncing_balls` - soft discs moving in a box, bouncing elastically off the walls and each other.

>>> d = pad_sequences([torch.ones(2, 3), torch.ones(4, 3)])
>>> d["x"].shape, d["mask"].tolist()
(torch.Size([2, 4, 3]), [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
>>> v = bouncing_balls(2, length=5, size=16, balls=2, seed=0)
>>> v["x"].shape, bool(v["mask"].all()), 0.0 <= float(v["x"].min()) <= float(v["x"].max()) <= 1.0
(torch.Size([2, 5, 1, 16, 16]), True, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .datasets import TensorDictDataset
from .mnist import load_mnist

__all__ = ["SequenceDataset", "bouncing_balls", "moving_mnist", "pad_sequences", "split_seed"]

Batch = dict[str, Tensor]
_DIGIT = 28  # MNIST digits are 28 × 28
_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def split_seed(seed: int, split: str) -> int:
    """A seed for ``split`` derived from ``(seed, split)`` (``numpy.random.SeedSequence``), so that the
    splits of a generated dataset differ while each stays reproducible.

    >>> split_seed(0, "train") != split_seed(0, "valid") and split_seed(3, "test") == split_seed(3, "test")
    True
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_CODES)}, got {split!r}")
    return int(np.random.SeedSequence([int(seed), _SPLIT_CODES[split]]).generate_state(1)[0])


def pad_sequences(sequences: Sequence[Tensor | np.ndarray]) -> Batch:
    """``{"x", "mask"}`` of ``sequences`` (each ``(T_i, *step_shape)``, all one step shape, ``T_i >= 1``):
    ``x`` float32 ``(N, max T_i, *step_shape)`` with zeros after each sequence's end, ``mask`` float32
    ``(N, max T_i)`` with ones on the real steps."""
    if len(sequences) == 0:
        raise ValueError("sequences must hold at least one sequence, got none")
    # numpy arrays are copied (they may be read-only, which torch.from_numpy warns about)
    steps = [s if isinstance(s, Tensor) else torch.from_numpy(np.array(s)) for s in sequences]
    step_shape = tuple(steps[0].shape[1:])
    for i, s in enumerate(steps):
        if s.dim() < 1 or tuple(s.shape[1:]) != step_shape or s.shape[0] < 1:
            raise ValueError(f"sequences[{i}] has shape {tuple(s.shape)}; expected (T >= 1, *{step_shape}) "
                             "like sequences[0]")
    lengths = [int(s.shape[0]) for s in steps]
    x = torch.zeros((len(steps), max(lengths), *step_shape), dtype=torch.float32)
    mask = torch.zeros((len(steps), max(lengths)), dtype=torch.float32)
    for i, (s, t) in enumerate(zip(steps, lengths, strict=True)):
        x[i, :t] = s
        mask[i, :t] = 1.0
    return {"x": x, "mask": mask}


class SequenceDataset(TensorDictDataset):
    """Padded sequences served as ``{"x": (T_max, *step_shape), "mask": (T_max,)}`` items; ``batch()``
    is the whole split dict and ``len`` the number of sequences.

    >>> ds = SequenceDataset.from_sequences([torch.ones(3, 2), torch.ones(1, 2)])
    >>> len(ds), ds.step_shape, ds.lengths.tolist(), sorted(ds.batch())
    (2, (2,), [3, 1], ['mask', 'x'])
    """

    def __init__(self, x: Tensor, mask: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"x must be (N, T, *step_shape), got shape {tuple(x.shape)}")
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"mask must be (N, T) = {tuple(x.shape[:2])} like x's first two dims, "
                             f"got {tuple(mask.shape)}")
        super().__init__({"x": x.float(), "mask": mask.float()})

    @classmethod
    def from_sequences(cls, sequences: Sequence[Tensor | np.ndarray]) -> SequenceDataset:
        """The dataset of ``sequences`` padded by :func:`pad_sequences`."""
        d = pad_sequences(sequences)
        return cls(d["x"], d["mask"])

    @property
    def step_shape(self) -> tuple[int, ...]:
        """The shape of one time step (``(88,)`` for piano rolls, ``(1, H, W)`` for frames)."""
        return tuple(self.tensors["x"].shape[2:])

    @property
    def lengths(self) -> Tensor:
        """int64 ``(N,)``: each sequence's number of real steps."""
        return self.tensors["mask"].sum(dim=1).round().long()

    def __repr__(self) -> str:
        return f"SequenceDataset(n={len(self)}, T_max={self.tensors['x'].shape[1]}, step_shape={self.step_shape})"


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _fold(p: np.ndarray, span: float) -> np.ndarray:
    """Positions ``p`` of free motion folded into ``[0, span]``: the path of a point bouncing elastically
    off both ends (a triangle wave of period ``2 span``)."""
    if span <= 0:
        return np.zeros_like(p)
    q = np.mod(p, 2.0 * span)
    return np.where(q > span, 2.0 * span - q, q)


def moving_mnist(
    n: int,
    length: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> Batch:
    """``n`` Moving-MNIST videos: ``{"x": float32 (n, length, 1, size, size) in [0, 1], "mask": ones}``.

    Each video holds ``digits`` MNIST digits (28 × 28, drawn at random from :func:`deepgm.data.load_mnist`'s
    ``split``: its train or valid images for ``"train"``/``"valid"``, the test images for ``"test"``, so
    the splits share no digit). Each starts at a uniform position inside the frame and moves in a uniform
    random direction at a constant speed drawn from ``[2, 4] · size / 64`` pixels per frame, bouncing off
    the frame's edges (positions rounded to whole pixels); overlapping digits combine by their maximum.
    The same arguments give the same tensor. MNIST is found as :func:`~deepgm.data.load_mnist` finds it
    (``data_dir``, else ``$DEEPGM_DATA``, else the cache; ``download=True`` fetches it) and its errors apply.
    """
    n = _check_int(n, "n", 1)
    length = _check_int(length, "length", 1)
    size = _check_int(size, "size", _DIGIT)
    digits = _check_int(digits, "digits", 1)
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_CODES)} for moving_mnist, got {split!r}")
    pool = load_mnist(split, data_dir, download=download).images[:, 0].numpy()  # (M, 28, 28) float32 in [0, 1]
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, pool.shape[0], size=(n, digits))
    span = float(size - _DIGIT)
    start = rng.uniform(0.0, span, size=(n, digits, 2))
    angle = rng.uniform(0.0, 2.0 * math.pi, size=(n, digits))
    speed = rng.uniform(2.0, 4.0, size=(n, digits)) * size / 64.0
    velocity = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * speed[..., None]  # (n, digits, 2): (row, col)
    t = np.arange(length, dtype=np.float64)[:, None, None, None]
    corner = np.rint(_fold(start[None] + t * velocity[None], span)).astype(np.int64)  # (length, n, digits, 2)
    corner = np.clip(corner, 0, size - _DIGIT)
    x = np.zeros((n, length, size, size), dtype=np.float32)
    offsets = np.arange(_DIGIT)
    seqs = np.arange(n)[:, None, None]
    for step in range(length):
        frame = x[:, step]
        for d in range(digits):
            rows = (corner[step, :, d, 0][:, None] + offsets)[:, :, None]  # (n, 28, 1)
            cols = (corner[step, :, d, 1][:, None] + offsets)[:, None, :]  # (n, 1, 28)
            frame[seqs, rows, cols] = np.maximum(frame[seqs, rows, cols], pool[chosen[:, d]])
    return {"x": torch.from_numpy(x).unsqueeze(2), "mask": torch.ones(n, length)}


def _place_balls(rng: np.random.Generator, n: int, balls: int, radius: float, size: int) -> np.ndarray:
    """Centres ``(n, balls, 2)`` inside the box, no two balls overlapping (rejection sampling)."""
    pos = rng.uniform(radius, size - radius, size=(n, balls, 2))
    for _ in range(1000):
        gap = np.linalg.norm(pos[:, :, None] - pos[:, None], axis=-1) + np.eye(balls) * 4 * radius
        bad = (gap < 2.0 * radius + 0.5).any(axis=(1, 2))
        if not bad.any():
            return pos
        pos[bad] = rng.uniform(radius, size - radius, size=(int(bad.sum()), balls, 2))
    raise ValueError(f"balls={balls} discs of radius {radius:.1f} do not fit apart in a {size}×{size} frame; "
                     "use fewer balls or a larger size")


def bouncing_balls(n: int, length: int = 20, size: int = 32, balls: int = 3, seed: int = 0) -> Batch:
    """``n`` bouncing-balls videos: ``{"x": float32 (n, length, 1, size, size) in [0, 1], "mask": ones}``.

    ``balls`` discs of radius ``size / 10`` start apart at uniform positions with speeds drawn from
    ``[1, 2] · size / 32`` pixels per frame in uniform directions. They move in straight lines, bounce
    elastically off the walls and off each other (equal masses: on contact the two balls exchange the
    components of their velocities along the line between their centres), simulated in 4 sub-steps per
    frame. Each frame renders the discs with a one-pixel soft edge (a pixel's value is
    ``clip(radius + 0.5 - distance, 0, 1)`` from its centre to the ball's), combined by their maximum.
    The same arguments give the same tensor.
    """
    n = _check_int(n, "n", 1)
    length = _check_int(length, "length", 1)
    size = _check_int(size, "size", 8)
    balls = _check_int(balls, "balls", 1)
    rng = np.random.default_rng(seed)
    radius = size / 10.0
    pos = _place_balls(rng, n, balls, radius, size)
    angle = rng.uniform(0.0, 2.0 * math.pi, size=(n, balls))
    speed = rng.uniform(1.0, 2.0, size=(n, balls)) * size / 32.0
    vel = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * speed[..., None]
    lo, hi = radius, size - radius
    centres = np.empty((length, n, balls, 2))
    substeps = 4
    for step in range(length):
        centres[step] = pos
        for _ in range(substeps):
            pos = pos + vel / substeps
            below, above = pos < lo, pos > hi
            pos = np.where(below, 2 * lo - pos, np.where(above, 2 * hi - pos, pos))
            vel = np.where(below | above, -vel, vel)
            for i in range(balls):
                for j in range(i + 1, balls):
                    d = pos[:, i] - pos[:, j]
                    dist2 = (d * d).sum(-1)
                    closing = ((vel[:, i] - vel[:, j]) * d).sum(-1)
                    hit = (dist2 < (2 * radius) ** 2) & (closing < 0) & (dist2 > 0)
                    dv = np.where(hit, closing / np.where(dist2 > 0, dist2, 1.0), 0.0)[:, None] * d
                    vel[:, i] -= dv
                    vel[:, j] += dv
    grid = np.arange(size, dtype=np.float64) + 0.5
    x = np.zeros((n, length, size, size), dtype=np.float32)
    for step in range(length):
        for b in range(balls):
            dr = grid[None, :, None] - centres[step, :, b, 0][:, None, None]
            dc = grid[None, None, :] - centres[step, :, b, 1][:, None, None]
            disc = np.clip(radius + 0.5 - np.sqrt(dr * dr + dc * dc), 0.0, 1.0).astype(np.float32)
            np.maximum(x[:, step], disc, out=x[:, step])
    return {"x": torch.from_numpy(x).unsqueeze(2), "mask": torch.ones(n, length)}
