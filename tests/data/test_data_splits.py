"""Seeded train/valid splits and class-balanced labelled subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepgm.data import labelled_subset, random_split_indices, train_valid_indices


def test_train_valid_indices() -> None:
    train, valid = train_valid_indices(60_000, 10_000, seed=0)
    assert (len(train), len(valid)) == (50_000, 10_000)
    assert torch.equal(torch.sort(torch.cat([train, valid])).values, torch.arange(60_000))
    assert torch.equal(valid, train_valid_indices(60_000, 10_000, seed=0)[1])
    assert not torch.equal(valid, train_valid_indices(60_000, 10_000, seed=1)[1])
    with pytest.raises(ValueError):
        train_valid_indices(10, 11)


def test_random_split_indices() -> None:
    parts = random_split_indices(100, [10, 20, 30], seed=2)
    assert [len(p) for p in parts] == [10, 20, 30]
    assert len(torch.unique(torch.cat(parts))) == 60
    with pytest.raises(ValueError):
        random_split_indices(10, [6, 6])


@pytest.fixture
def labels() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 10, (5_000,), generator=gen)


def test_balanced_subset(labels: torch.Tensor) -> None:
    idx = labelled_subset(labels, n_labels=100, seed=0)
    assert idx.dtype == torch.int64 and len(idx) == 100 and len(torch.unique(idx)) == 100
    assert torch.bincount(labels[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, labelled_subset(labels, 100, seed=0))
    assert not torch.equal(idx, labelled_subset(labels, 100, seed=1))
    assert torch.equal(idx, labelled_subset(labels.numpy(), 100, seed=0))


def test_uneven_subset(labels: torch.Tensor) -> None:
    idx = labelled_subset(labels, n_labels=25, seed=0)
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() <= 1


def test_subset_errors() -> None:
    y = np.array([0] * 50 + [1] * 3)
    with pytest.raises(ValueError, match="class 1 has 3 examples"):
        labelled_subset(y, n_labels=10)
    with pytest.raises(ValueError, match="n_labels"):
        labelled_subset(y, n_labels=100)
