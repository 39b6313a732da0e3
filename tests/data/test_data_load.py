"""load_dataset, ImageDataset options and DataLoader batches, on synthetic MNIST files and digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from deepgm.data import (
    DSprites,
    ImageDataset,
    TensorDictDataset,
    collate_dicts,
    dataset_names,
    load_dataset,
    toy_2d_names,
)


@pytest.fixture
def mnist_dir(isolated_env: Path, tmp_path: Path, fake_mnist) -> Path:
    return fake_mnist(tmp_path / "mnist", n_train=60, n_test=20)


def test_names() -> None:
    names = dataset_names()
    assert {"mnist", "fashion-mnist", "digits", "dsprites"} <= set(names)
    assert set(toy_2d_names()) <= set(names)
    with pytest.raises(ValueError, match="valid names: mnist, fashion-mnist, digits"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("digits", "dev")


def test_mnist_splits(mnist_dir: Path) -> None:
    train = load_dataset("mnist", "train", mnist_dir, n_valid=10)
    valid = load_dataset("mnist", "validation", mnist_dir, n_valid=10)
    full = load_dataset("mnist", "train+valid", mnist_dir)
    test = load_dataset("mnist", "test", mnist_dir)
    assert (len(train), len(valid), len(full), len(test)) == (50, 10, 60, 20)
    item = train[0]
    assert set(item) == {"x", "y"}
    assert item["x"].shape == (1, 28, 28) and item["x"].dtype == torch.float32
    assert item["y"].dtype == torch.int64
    assert 0.0 <= float(full.images.min()) and float(full.images.max()) <= 1.0
    merged = torch.cat([train.images, valid.images])
    assert len(torch.unique(merged.flatten(1), dim=0)) == 60  # disjoint, covering all


def test_fixed_binarisation_consistent_across_splits(mnist_dir: Path) -> None:
    full = load_dataset("mnist", "train+valid", mnist_dir, binarize="fixed")
    valid = load_dataset("mnist", "valid", mnist_dir, binarize="fixed", n_valid=10)
    again = load_dataset("mnist", "valid", mnist_dir, binarize="fixed", n_valid=10)
    assert torch.equal(valid.images, again.images)
    rows = {tuple(r.tolist()) for r in full.images.flatten(1)}
    assert all(tuple(r.tolist()) in rows for r in valid.images.flatten(1))
    assert valid.binarize == "fixed"


def test_dynamic_binarisation_per_access(mnist_dir: Path) -> None:
    ds = load_dataset("mnist", "test", mnist_dir, binarize="dynamic")
    torch.manual_seed(0)
    a, b = ds[0]["x"], ds[0]["x"]
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)
    assert not torch.equal(ds.batch([0, 1])["x"], ds.batch([0, 1])["x"])


def test_flatten_and_halves(mnist_dir: Path) -> None:
    flat = load_dataset("mnist", "test", mnist_dir, flatten=True)
    assert flat[0]["x"].shape == (784,)
    halves = load_dataset("mnist", "test", mnist_dir, halves=True)
    item = halves[2]
    assert set(item) == {"x_top", "x_bottom", "y"}
    assert item["x_top"].shape == (1, 14, 28) and item["x_bottom"].shape == (1, 14, 28)
    whole = flat.images[2, 0]
    assert torch.equal(torch.cat([item["x_top"], item["x_bottom"]], dim=1)[0], whole)
    flat_halves = load_dataset("mnist", "test", mnist_dir, halves=True, flatten=True)
    assert flat_halves[0]["x_top"].shape == (392,)
    batch = flat_halves.batch([0, 1, 2])
    assert batch["x_bottom"].shape == (3, 392) and batch["y"].shape == (3,)


def test_transform_applied(mnist_dir: Path) -> None:
    ds = load_dataset("mnist", "test", mnist_dir, transform=lambda x: 1.0 - x)
    torch.testing.assert_close(ds[0]["x"], 1.0 - ds.images[0])


def test_dataloader_batches_are_dicts(mnist_dir: Path) -> None:
    ds = load_dataset("mnist", "train", mnist_dir, n_valid=10, flatten=True, binarize="dynamic")
    batch = next(iter(DataLoader(ds, batch_size=16, shuffle=True)))
    assert batch["x"].shape == (16, 784) and batch["y"].shape == (16,) and batch["y"].dtype == torch.int64
    mine = collate_dicts([ds[i] for i in range(4)])
    assert mine["x"].shape == (4, 784)


def test_fashion_mnist_same_layout(isolated_env: Path, tmp_path: Path, fake_mnist) -> None:
    folder = fake_mnist(tmp_path / "data" / "FashionMNIST" / "raw", n_test=7)
    ds = load_dataset("fashion_mnist", "test", tmp_path / "data")
    assert len(ds) == 7 and ds.classes is not None and ds.classes[9] == "Ankle boot"
    assert folder.is_dir()


def test_digits() -> None:
    train, valid, test = (load_dataset("digits", s) for s in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (1257, 180, 360)
    assert isinstance(train, ImageDataset)
    assert train[0]["x"].shape == (1, 8, 8)
    assert float(train.images.max()) == 1.0 and float(train.images.min()) == 0.0
    assert len(load_dataset("digits", "train+valid")) == 1437
    halves = load_dataset("digits", "test", halves=True, flatten=True)
    assert halves[0]["x_top"].shape == (32,)
    fixed = load_dataset("digits", "test", binarize="fixed")
    assert torch.equal(fixed.images, load_dataset("digits", "test", binarize="fixed").images)


def test_toy_and_dsprites_via_load_dataset() -> None:
    ds = load_dataset("8gaussians", "valid", n_samples=500, seed=1)
    assert isinstance(ds, TensorDictDataset) and len(ds) == 500 and ds[0]["x"].shape == (2,)
    assert len(load_dataset("moons", "test")) == 10_000
    with pytest.raises(ValueError, match="image options"):
        load_dataset("moons", binarize="dynamic")
    sprites = load_dataset("dsprites", "test", size=32, n_pos=4, n_rotation=4, n_scale=2)
    assert isinstance(sprites, DSprites) and sprites[0]["x"].shape == (1, 32, 32)


@pytest.mark.parametrize("name", ["digits", "moons"])
def test_data_dir_for_a_dataset_without_files_is_refused(tmp_path: Path, name: str) -> None:
    # issue 19: a folder given is used or refused; digits and the toys read none, so it was ignored silently
    with pytest.raises(ValueError, match=f"data_dir=.* given for '{name}', which reads no files"):
        load_dataset(name, "test", tmp_path)
