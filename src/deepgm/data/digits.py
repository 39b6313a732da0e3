"""scikit-learn's bundled 8×8 handwritten digits (1797 images, no download needed)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from .datasets import ImageDataset
from .mnist import normalize_split
from .splits import random_split_indices
from .transforms import binarize_fixed

__all__ = ["load_digits", "load_digits_arrays"]


@functools.lru_cache(maxsize=1)
def _digits_cached() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn import datasets as sk_datasets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the 'digits' dataset needs scikit-learn: pip install scikit-learn") from err
    bunch = sk_datasets.load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 (1797, 8, 8) in [0, 1], labels int64 (1797,))``: sklearn's values 0..16 divided by 16."""
    images, labels = _digits_cached()
    return images.copy(), labels.copy()


def load_digits(
    split: str = "train",
    *,
    n_valid: int = 180,
    n_test: int = 360,
    split_seed: int = 0,
    binarize_seed: int = 0,
    **dataset_kwargs: object,
) -> ImageDataset:
    """The 8×8 digits as an :class:`ImageDataset` of ``(1, 8, 8)`` images in [0, 1].

    The 1797 images are split by a seeded permutation into ``n_test`` test, ``n_valid`` validation
    and the rest (1257 by default) training examples. ``"train+valid"`` joins the first two.
    """
    split = normalize_split(split)
    images_np, labels_np = load_digits_arrays()
    images = torch.from_numpy(images_np).unsqueeze(1)
    labels = torch.from_numpy(labels_np)
    n = images.shape[0]
    test_idx, valid_idx, train_idx = random_split_indices(n, [n_test, n_valid, n - n_test - n_valid], split_seed)
    kwargs = dict(dataset_kwargs)
    fixed = kwargs.get("binarize") == "fixed"
    if fixed:
        images = binarize_fixed(images, binarize_seed)
        kwargs["binarize"] = None
    idx = {
        "train": train_idx,
        "valid": valid_idx,
        "test": test_idx,
        "train+valid": torch.sort(torch.cat([train_idx, valid_idx])).values,
    }[split]
    dataset = ImageDataset(
        images[idx],
        labels[idx],
        classes=tuple(str(d) for d in range(10)),
        **kwargs,  # type: ignore[arg-type]
    )
    if fixed:
        dataset.binarize = "fixed"
    return dataset
