"""M2's labelled-subset path: ``prepare_m2`` picks a class-balanced labelled subset, ``set_labelled``
stores it with the batch transform, and every training step pairs the unlabelled batch with a draw of it."""

from __future__ import annotations

import pytest
import torch

from deepgm import zoo
from deepgm.zoo.m2 import M2, M2Config, prepare_m2


def _splits() -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.rand(3, 16, generator=g)[y]
    return {"train": {"x": x, "y": y}, "valid": {"x": x[:9], "y": y[:9]}, "test": {"x": x[:12], "y": y[:12]}}


def _model(cfg: M2Config) -> M2:
    model = zoo.get("m2").build(cfg, zoo.DataInfo("toy", (16,), n_classes=3))
    assert isinstance(model, M2)
    return model


def test_prepare_sets_a_balanced_labelled_subset_and_trains_on_the_images() -> None:
    cfg = M2Config(z_dim=2, hidden=(8,), n_labels=6, labelled_batch=4)
    model = _model(cfg)
    splits = _splits()
    calls: list[int] = []

    def transform(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        calls.append(len(batch["x"]))
        return {**batch, "x": torch.bernoulli(batch["x"])}

    train = prepare_m2(model, cfg, splits, transform)
    assert train.keys() == {"x"} and torch.equal(train["x"], splits["train"]["x"])  # the images, unlabelled
    labelled = model._labelled
    assert labelled is not None and torch.bincount(labelled["y"]).tolist() == [2, 2, 2]  # n_labels, balanced
    rows = {tuple(r.tolist()) for r in splits["train"]["x"]}
    assert all(tuple(r.tolist()) in rows for r in labelled["x"])  # taken from the training split
    torch.manual_seed(0)
    value = model.train_step({"x": train["x"][:10]})
    assert isinstance(value, float) and calls == [4]  # one labelled draw of labelled_batch, transformed
    batch = model._with_labelled({"x": train["x"][:10]})
    assert batch["x_u"].shape == (10, 16) and batch["x"].shape == (4, 16) and batch["y"].shape == (4,)
    assert set(batch["y"].tolist()) <= {0, 1, 2}


def test_training_without_a_labelled_subset_says_what_to_do() -> None:
    model = _model(M2Config(z_dim=2, hidden=(8,)))
    with pytest.raises(ValueError, match="set_labelled"):
        model.train_step({"x": torch.rand(5, 16)})


def test_a_labelled_batch_is_used_for_both_terms_and_the_accuracy_is_reported() -> None:
    model = _model(M2Config(z_dim=2, hidden=(8,)))
    test = _splits()["test"]
    assert torch.equal(model._with_labelled(test)["x_u"], test["x"])  # validation needs no subset
    assert isinstance(model.eval_step(test), float)
    metrics = model.evaluate(test)
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_error"] == pytest.approx(1 - metrics["test_accuracy"])
