"""The families' own evaluation: what ``evaluate`` reports, against the definitions it stands for."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import pytest
import torch

from deepgm import zoo
from deepgm.distributions import Normal
from deepgm.metrics.mnist import CLASSIFIER_WEIGHTS, mnist_classifier, mnist_classifier_info
from deepgm.models import GAN, ML, FlowModel
from deepgm.models.evaluation import generator_metrics, save_samples_to


def test_flow_reports_the_exact_nll_and_its_bits_per_dim() -> None:
    torch.manual_seed(0)
    model = zoo.get("nice").build(zoo.get("nice").config(hidden=(8,)), zoo.DataInfo("toy", (2,), binary=False))
    assert isinstance(model, FlowModel)
    x = torch.randn(50, 2)
    metrics = model.evaluate({"x": x})
    nll = float(-model.log_likelihood(x).mean())
    assert metrics["test_nll"] == pytest.approx(nll, rel=1e-6)
    assert metrics["test_bits_per_dim"] == pytest.approx(nll / (2 * math.log(2)), rel=1e-6)
    assert metrics["test_bits_per_dim"] == pytest.approx(model.bits_per_dim(x), rel=1e-5)


def test_the_default_evaluation_is_the_mean_objective_over_batches() -> None:
    p = Normal(var=["x"], loc=torch.nn.Parameter(torch.zeros(3)), scale=1.0, name="p")
    model = ML(p)
    x = torch.randn(1234, 3, generator=torch.Generator().manual_seed(0))
    assert model.evaluate({"x": x})["test_loss"] == pytest.approx(model.eval_step({"x": x}), rel=1e-5)
    assert model.figures(Path("unused"), {"x": x}, zoo.DataInfo("toy", (3,))) == []


def test_a_gan_on_28x28_images_reports_mnist_fid_and_is() -> None:
    torch.manual_seed(0)
    info = zoo.DataInfo("mnist", (784,), 10)
    model = zoo.get("gan").build(zoo.get("gan").config(z_dim=4, hidden=(16,)), info)
    assert isinstance(model, GAN)
    test = {"x": torch.rand(60, 784, generator=torch.Generator().manual_seed(1))}
    metrics = model.evaluate(test, info=info)
    assert metrics["samples"] == 60 and metrics["mnist_fid"] > 0 and 1 <= metrics["mnist_is"] <= 10
    assert 1 <= metrics["mnist_is_reference"] <= 10 and "precision" not in metrics


def test_generator_metrics_on_a_toy_mixture_count_its_modes() -> None:
    from deepgm.data import toy_2d

    real, good = toy_2d("8gaussians", 800, seed=0), toy_2d("8gaussians", 800, seed=1)
    collapsed = good[:1].repeat(800, 1) + 0.01 * torch.randn(800, 2, generator=torch.Generator().manual_seed(0))
    info = zoo.DataInfo("8gaussians", (2,), binary=False)
    ok, bad = generator_metrics(good, real, info), generator_metrics(collapsed, real, info)
    assert ok["modes_captured"] == ok["n_modes"] == 8 and bad["modes_captured"] == 1
    assert ok["test_mmd2"] < bad["test_mmd2"] and ok["recall"] > bad["recall"] and "mode coverage" in ok["note"]
    assert "modes_captured" not in generator_metrics(good, real, zoo.DataInfo("moons", (2,), binary=False))


def test_samples_are_written_as_tensors_or_pictures(tmp_path: Path) -> None:
    import numpy as np

    x = torch.rand(70, 16)
    info = zoo.DataInfo("toy", (16,))
    assert save_samples_to(x, tmp_path / "a.pt", info) == [tmp_path / "a.pt", tmp_path / "a.png"]
    assert torch.equal(torch.load(tmp_path / "a.pt"), x)
    assert save_samples_to(x, tmp_path / "a.npy", info)[0] == tmp_path / "a.npy"
    assert np.array_equal(np.load(tmp_path / "a.npy"), x.numpy())
    assert save_samples_to(torch.rand(5, 3), tmp_path / "b.npy", zoo.DataInfo("toy", (3,))) == [tmp_path / "b.npy"]
    with pytest.raises(ValueError, match="not images or 2-D points"):
        save_samples_to(torch.rand(5, 3), tmp_path / "b.png", zoo.DataInfo("toy", (3,)))
    with pytest.raises(ValueError, match=r"\.png, \.pt or \.npy"):
        save_samples_to(x, tmp_path / "a.csv", info)


def test_the_packaged_mnist_classifier_is_the_recorded_one() -> None:
    record = mnist_classifier_info()
    assert hashlib.sha256(CLASSIFIER_WEIGHTS.read_bytes()).hexdigest() == record["sha256"]
    assert record["test_accuracy"] >= 0.98 and "scripts/train_mnist_classifier.py" in record["command"]
    root = os.environ.get("DEEPGM_DATA")
    if root is None or not (Path(root) / "mnist").exists():
        pytest.skip("MNIST not available: set DEEPGM_DATA to check the accuracy")
    from deepgm.data import load_dataset

    test = load_dataset("mnist", "test", Path(root) / "mnist", flatten=True).batch()  # type: ignore[attr-defined]
    with torch.no_grad():
        predicted = mnist_classifier()(test["x"][:1000]).argmax(-1)
    assert float((predicted == test["y"][:1000]).float().mean()) >= 0.97
