"""Padded sequences, Moving MNIST (on small synthetic MNIST files) and bouncing balls, and their use
through load_dataset / load_splits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from deepgm.data import (
    SEQUENCE_DATASETS,
    DataInfo,
    SequenceDataset,
    bouncing_balls,
    dataset_names,
    load_dataset,
    load_splits,
    moving_mnist,
    pad_sequences,
    write_idx,
)


def test_pad_sequences_zero_pads_and_masks() -> None:
    seqs = [torch.full((2, 3), 0.5), np.ones((4, 3), dtype=np.uint8)]
    d = pad_sequences(seqs)
    assert d["x"].shape == (2, 4, 3) and d["x"].dtype == torch.float32 and d["mask"].dtype == torch.float32
    assert d["mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert float(d["x"][0, 2:].abs().sum()) == 0.0 and float(d["x"][0, :2].min()) == 0.5
    with pytest.raises(ValueError, match=r"sequences\[1\] has shape \(2, 4\); expected \(T >= 1, \*\(3,\)\)"):
        pad_sequences([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(ValueError, match="at least one sequence"):
        pad_sequences([])


def test_sequence_dataset_items_and_shape_checks() -> None:
    ds = SequenceDataset.from_sequences([torch.ones(3, 1, 2, 2), torch.ones(1, 1, 2, 2)])
    assert len(ds) == 2 and ds.step_shape == (1, 2, 2) and ds.lengths.tolist() == [3, 1]
    assert ds[1]["x"].shape == (3, 1, 2, 2) and ds[1]["mask"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match=r"mask must be \(N, T\) = \(2, 3\)"):
        SequenceDataset(torch.zeros(2, 3, 4), torch.zeros(2, 4))


@pytest.fixture
def square_mnist(isolated_env: Path, tmp_path: Path) -> Path:
    """MNIST files whose training digits are solid white 28×28 squares and test digits grey (128) ones;
    10,010 training images so that load_mnist's default 10k validation split fits."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.full((10_010, 28, 28), 255, dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(10_010) % 10).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.full((5, 28, 28), 128, dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    return folder


def test_moving_mnist_keeps_digits_inside_and_moving(square_mnist: Path) -> None:
    v = moving_mnist(6, length=15, size=40, digits=1, seed=3, data_dir=square_mnist)
    x = v["x"]
    assert x.shape == (6, 15, 1, 40, 40) and x.dtype == torch.float32 and bool((v["mask"] == 1).all())
    assert torch.all(x.sum(dim=(2, 3, 4)) == 784)  # the whole 28×28 square is in every frame
    assert all(not torch.equal(x[i, 0], x[i, -1]) for i in range(6))  # and it moves
    again = moving_mnist(6, length=15, size=40, digits=1, seed=3, data_dir=square_mnist)
    assert torch.equal(x, again["x"])
    assert not torch.equal(x, moving_mnist(6, length=15, size=40, digits=1, seed=4, data_dir=square_mnist)["x"])


def test_moving_mnist_combines_digits_by_max_and_uses_test_digits_for_test(square_mnist: Path) -> None:
    train = moving_mnist(4, length=5, size=32, digits=2, data_dir=square_mnist)["x"]
    assert float(train.max()) == 1.0 and float(train.min()) == 0.0
    assert torch.all(train.sum(dim=(2, 3, 4)) >= 784)  # overlaps combine by max, never above 1
    test = moving_mnist(4, length=5, size=32, split="test", data_dir=square_mnist)["x"]
    assert torch.allclose(test.max(), torch.tensor(128 / 255))
    with pytest.raises(ValueError, match="size must be an int >= 28"):
        moving_mnist(2, size=20, data_dir=square_mnist)


def test_moving_mnist_through_load_dataset(square_mnist: Path) -> None:
    train = load_dataset("moving_mnist", "train", square_mnist, n_samples=3, length=4, size=32)
    valid = load_dataset("moving-mnist", "valid", square_mnist, n_samples=3, length=4, size=32)
    full = load_dataset("moving-mnist", "train+valid", square_mnist, n_samples=3, length=4, size=32)
    assert isinstance(train, SequenceDataset) and train.batch()["x"].shape == (3, 4, 1, 32, 32)
    assert not torch.equal(train.batch()["x"], valid.batch()["x"])  # split seeds differ
    assert torch.equal(full.batch()["x"], torch.cat([train.batch()["x"], valid.batch()["x"]]))  # type: ignore


def test_bouncing_balls_stay_in_the_frame_and_are_reproducible() -> None:
    v = bouncing_balls(5, length=60, size=32, balls=1, seed=2)["x"]
    assert v.shape == (5, 60, 1, 32, 32) and 0.0 <= float(v.min()) and float(v.max()) <= 1.0
    area = math.pi * 3.2**2  # the soft disc's mass is about the disc's area in every frame: it never leaves
    assert torch.allclose(v.sum(dim=(2, 3, 4)), torch.full((5, 60), area), rtol=0.1)
    assert all(not torch.equal(v[i, 0], v[i, 30]) for i in range(5))
    many = bouncing_balls(3, length=8, size=24, balls=3, seed=1)["x"]
    assert torch.equal(many, bouncing_balls(3, length=8, size=24, balls=3, seed=1)["x"])
    assert not torch.equal(many, bouncing_balls(3, length=8, size=24, balls=3, seed=2)["x"])
    with pytest.raises(ValueError, match="do not fit apart"):
        bouncing_balls(1, size=8, balls=20)


def test_bouncing_balls_through_load_dataset_and_load_splits() -> None:
    assert {"jsb", "nottingham", "musedata", "piano-midi", "moving-mnist", "bouncing-balls"} == set(SEQUENCE_DATASETS)
    assert set(SEQUENCE_DATASETS) <= set(dataset_names())
    a = load_dataset("bouncing_balls", "test", n_samples=2, length=3, size=16, seed=5).batch()  # type: ignore
    b = load_dataset("bouncing-balls", "test", n_samples=2, length=3, size=16, seed=5).batch()  # type: ignore
    assert set(a) == {"x", "mask"} and torch.equal(a["x"], b["x"]) and a["x"].shape == (2, 3, 1, 16, 16)
    with pytest.raises(ValueError, match="reads no files"):
        load_dataset("bouncing-balls", "train", "/tmp")
    data = load_splits("bouncing-balls", binarize="auto", pixels="binary")
    assert data.info == DataInfo("bouncing-balls", (1, 32, 32), None, binary=True, sequence=True)
    assert data.info.image_shape == (1, 32, 32) and data.transform is None
    assert [tuple(data.splits[s]["x"].shape) for s in ("train", "valid", "test")] == [
        (1000, 20, 1, 32, 32), (100, 20, 1, 32, 32), (100, 20, 1, 32, 32)]
    with pytest.raises(ValueError, match="binarize='dynamic' applies to MNIST-like images"):
        load_splits("bouncing-balls", binarize="dynamic")


def test_data_info_round_trips_the_sequence_flag() -> None:
    info = DataInfo("jsb", (88,), None, True, sequence=True)
    assert DataInfo.from_dict({"name": "jsb", "x_shape": [88], "binary": True, "sequence": True}) == info
    assert DataInfo.from_dict({"name": "digits", "x_shape": [64]}).sequence is False
