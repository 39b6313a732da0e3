"""``load_splits``: the splits, the description and the training transform of a dataset, with the
binarisation rule in one place; ``DataInfo`` and the square-image rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from deepgm.data import (
    TEST_BINARIZE_SEED,
    DataInfo,
    binarize_fixed,
    load_dataset,
    load_splits,
    resolve_binarize,
    square_image_shape,
)


def test_square_images_and_data_info() -> None:
    assert [square_image_shape(d) for d in (784, 64, 4096, 2, 20, 1, 0)] == [
        (1, 28, 28), (1, 8, 8), (1, 64, 64), None, None, None, None]
    info = DataInfo("mnist", (784,), 10)
    assert info.x_dim == 784 and info.image_shape == (1, 28, 28)
    assert DataInfo("sprites", (1, 32, 32)).image_shape == (1, 32, 32) and DataInfo("toy", (2,)).image_shape is None
    assert DataInfo.from_dict({"name": "mnist", "x_shape": [784], "n_classes": 10, "binary": True}) == info


def test_auto_binarisation_follows_the_model_pixels() -> None:
    assert resolve_binarize("auto", "binary") == "dynamic" and resolve_binarize("auto", "grey") == "none"
    assert resolve_binarize("dynamic", "grey") == "dynamic"
    with pytest.raises(ValueError, match="binarize must be"):
        resolve_binarize("fixed", "grey")  # type: ignore[arg-type]


def test_digits_are_grey_flat_and_labelled_whatever_the_binarisation() -> None:
    data = load_splits("digits", binarize="dynamic")
    assert data.transform is None  # the 8×8 digits keep their grey levels (Bernoulli probabilities)
    assert data.info == DataInfo("digits", (64,), 10, binary=True)
    assert [len(data.splits[s]["x"]) for s in ("train", "valid", "test")] == [1257, 180, 360]
    assert not torch.equal(data.test["x"], data.test["x"].round())


def test_unknown_datasets_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid: mnist"):
        load_splits("imagenet")
    with pytest.raises(ValueError, match="dsprites is rendered on demand"):
        load_splits("dsprites")  # was a TypeError from deep inside the loader


def test_two_d_toys_are_points_without_labels() -> None:
    data = load_splits("8gaussians")
    assert data.info == DataInfo("8gaussians", (2,), None, binary=False) and data.info.image_shape is None


@pytest.mark.skipif(not (Path(os.environ.get("DEEPGM_DATA", "/nonexistent")) / "mnist").exists(),
                    reason="MNIST not available (set DEEPGM_DATA)")
def test_mnist_for_bernoulli_models_is_binarised_dynamically_with_fixed_held_out_images() -> None:
    data = load_splits("mnist", binarize="auto", pixels="binary")
    grey = load_dataset("mnist", "test", flatten=True).batch()  # type: ignore[attr-defined]
    assert torch.equal(data.test["x"], binarize_fixed(grey["x"], seed=TEST_BINARIZE_SEED))  # the same every run
    assert data.transform is not None and data.train["x"].max() <= 1 and not torch.equal(
        data.train["x"], data.train["x"].round())  # training images stay grey: each batch is drawn anew
    torch.manual_seed(0)
    batch = data.transform({"x": data.train["x"][:5], "y": data.train["y"][:5]})
    assert set(batch["x"].unique().tolist()) == {0.0, 1.0} and torch.equal(batch["y"], data.train["y"][:5])
    assert load_splits("mnist", binarize="auto", pixels="grey").transform is None
