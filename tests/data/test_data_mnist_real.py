"""Loading the real MNIST files, when present (DEEPGM_DATA, else <repo>/../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from deepgm.data import DatasetNotFoundError, labelled_subset, load_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _data_root() -> Path | None:
    env = os.environ.get("DEEPGM_DATA")
    if env:
        return Path(env.split(os.pathsep)[0])
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else None


ROOT = _data_root()


@pytest.fixture(scope="module")
def train_full():
    if ROOT is None:
        pytest.skip("real MNIST not available: set DEEPGM_DATA or provide <repo>/../shared/data/mnist")
    try:
        return load_dataset("mnist", "train+valid", ROOT)
    except DatasetNotFoundError as err:
        pytest.skip(f"real MNIST not found under {ROOT}: {err.args[0].splitlines()[1]}")


def test_train_full(train_full) -> None:
    assert len(train_full) == 60_000
    assert train_full.images.shape == (60_000, 1, 28, 28)
    assert train_full.images.dtype == torch.float32
    assert float(train_full.images.min()) == 0.0 and float(train_full.images.max()) == 1.0
    assert train_full.labels.dtype == torch.int64
    assert torch.bincount(train_full.labels).tolist() == TRAIN_COUNTS


def test_test_split(train_full) -> None:
    test = load_dataset("mnist", "test", ROOT)
    assert len(test) == 10_000
    assert torch.bincount(test.labels).tolist() == TEST_COUNTS
    item = test[0]
    assert item["x"].shape == (1, 28, 28) and int(item["y"]) == 7  # the first t10k digit is a 7


def test_train_valid_partition(train_full) -> None:
    train = load_dataset("mnist", "train", ROOT)
    valid = load_dataset("mnist", "valid", ROOT)
    assert (len(train), len(valid)) == (50_000, 10_000)
    counts = torch.bincount(train.labels, minlength=10) + torch.bincount(valid.labels, minlength=10)
    assert counts.tolist() == TRAIN_COUNTS
    again = load_dataset("mnist", "valid", ROOT)
    assert torch.equal(valid.images, again.images)  # deterministic split
    other = load_dataset("mnist", "valid", ROOT, seed=1)
    assert not torch.equal(valid.labels, other.labels)


def test_real_options(train_full) -> None:
    ds = load_dataset("mnist", "test", ROOT, flatten=True, binarize="fixed", halves=True)
    item = ds[3]
    assert item["x_top"].shape == (392,) and item["x_bottom"].shape == (392,)
    assert set(torch.unique(ds.images).tolist()) <= {0.0, 1.0}
    idx = labelled_subset(train_full.labels, 100, seed=0)
    assert torch.bincount(train_full.labels[idx]).tolist() == [10] * 10
