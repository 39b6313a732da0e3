"""Deterministic, seeded index splits: train / validation, random partitions, labelled subsets.

Permutations come from ``numpy.random.default_rng(seed)`` (PCG64), whose streams are stable
across numpy versions and platforms, so a seed names the same split everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["labelled_subset", "random_split_indices", "train_valid_indices"]


def _as_numpy(labels: Tensor | np.ndarray | Sequence[int]) -> np.ndarray:
    if isinstance(labels, Tensor):
        return labels.detach().cpu().numpy()
    return np.asarray(labels)


def train_valid_indices(n: int, n_valid: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split ``range(n)`` into ``n - n_valid`` training and ``n_valid`` validation indices.

    A seeded permutation is cut in two; each part is returned sorted (int64).
    """
    if not 0 <= n_valid <= n:
        raise ValueError(f"n_valid must be in [0, {n}], got {n_valid}")
    perm = np.random.default_rng(seed).permutation(n)
    train = np.sort(perm[: n - n_valid])
    valid = np.sort(perm[n - n_valid :])
    return torch.from_numpy(train).long(), torch.from_numpy(valid).long()


def random_split_indices(n: int, sizes: Sequence[int], seed: int = 0) -> list[Tensor]:
    """Partition ``range(n)`` into disjoint sorted index sets of the given ``sizes`` (summing to ≤ n)."""
    if any(s < 0 for s in sizes) or sum(sizes) > n:
        raise ValueError(f"sizes {list(sizes)} must be non-negative and sum to at most {n}")
    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for size in sizes:
        out.append(torch.from_numpy(np.sort(perm[start : start + size])).long())
        start += size
    return out


def labelled_subset(labels: Tensor | np.ndarray | Sequence[int], n_labels: int = 100, seed: int = 0) -> Tensor:
    """Indices of a class-balanced labelled subset of size ``n_labels`` (sorted, int64).

    With ``K`` classes each gets ``n_labels // K`` examples, drawn without replacement by a seeded
    generator; the ``n_labels % K`` left over go to distinct, randomly chosen classes (one each).
    For MNIST and ``n_labels=100`` that is 10 examples per digit.
    """
    y = _as_numpy(labels).reshape(-1)
    classes = np.unique(y)
    k = len(classes)
    if k == 0:
        raise ValueError("labels is empty")
    if not 0 <= n_labels <= len(y):
        raise ValueError(f"n_labels must be in [0, {len(y)}], got {n_labels}")
    rng = np.random.default_rng(seed)
    per_class = np.full(k, n_labels // k)
    per_class[rng.permutation(k)[: n_labels % k]] += 1
    chosen = []
    for c, count in zip(classes, per_class, strict=True):
        members = np.flatnonzero(y == c)
        if count > len(members):
            raise ValueError(f"class {c} has {len(members)} examples, fewer than the {count} requested")
        chosen.append(rng.choice(members, size=int(count), replace=False))
    return torch.from_numpy(np.sort(np.concatenate(chosen))).long()
