"""Every registered model evaluates and draws itself through the one protocol the CLI calls:
``evaluate(test_data, k=..., info=...)`` returns JSON-ready metrics of its family, ``figures(out_dir,
test_data, info)`` writes its pictures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from deepgm import zoo
from deepgm.models import GAN, VAE, Evaluates, FlowModel

SMALL = {"z_dim": 2, "hidden": (16,), "z1_dim": 4, "z2_dim": 2, "hidden1": (16,), "hidden2": (8,),
         "dataset_size": 64, "capacity_steps": 20, "lambda_": 10.0, "n_codes": 3, "channels": 4}
INFO = zoo.DataInfo("toy", (16,), n_classes=3)  # 4×4 "images": square, so every figure applies


def _test_data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (48,), generator=g)
    x = torch.bernoulli(torch.rand(3, 16, generator=g)[y], generator=g)
    return {"x": x, "y": y}


def _build(name: str) -> torch.nn.Module:
    entry = zoo.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    return entry.build(entry.config(**{k: v for k, v in SMALL.items() if k in fields}), INFO)


@pytest.mark.parametrize("name", zoo.names())
def test_every_model_evaluates_and_draws_itself(name: str, tmp_path: Path) -> None:
    if zoo.get(name).sequences:
        pytest.skip(f"{name} models sequences: tests/zoo/test_sequence_models.py evaluates it")
    if zoo.get(name).example is not None:
        pytest.skip(f"{name} models {zoo.get(name).example.name}: tests/zoo/test_gqn.py evaluates it")
    torch.manual_seed(0)
    model = _build(name)
    assert isinstance(model, Evaluates)
    data = _test_data()
    metrics = model.evaluate(data, k=4, info=INFO)
    json.dumps(metrics)  # a metrics.json entry
    numbers = [v for v in metrics.values() if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers), metrics
    if isinstance(model, FlowModel):
        assert metrics["likelihood"] == "exact" and metrics["test_bits_per_dim"] > 0
    elif isinstance(model, VAE):
        assert metrics["test_nll"] == metrics["test_nll_k4"] and metrics["test_elbo"] < 0
    elif isinstance(model, GAN):
        assert metrics["test_mmd2"] >= 0 and "precision" in metrics
    else:
        assert "test_accuracy" in metrics or "test_loss" in metrics
    paths = model.figures(tmp_path, data, INFO)
    assert paths and all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)
    assert model.training  # evaluation leaves the model as it found it


def test_a_conditional_vae_is_evaluated_and_drawn_at_the_test_labels(tmp_path: Path) -> None:
    model = _build("cvae")
    assert isinstance(model, VAE)
    data = _test_data()
    assert model.conditions(data).keys() == {"y"}
    torch.manual_seed(0)
    metrics = model.evaluate(data, k=50, info=INFO)
    assert metrics["test_nll"] <= -metrics["test_elbo"] + 1.0  # the importance-sampled bound is the tighter
    names = {p.name for p in model.figures(tmp_path, data, INFO)}
    assert names == {"samples.png", "reconstructions.png", "latent_traversal.png", "latent_map.png"}


def test_multimodal_models_report_coherence_on_mnist() -> None:
    entry = zoo.get("mmvae")
    info = zoo.DataInfo("mnist", (784,), n_classes=10)
    model = entry.build(entry.config(z_dim=2, hidden=(16,), label_hidden=(8,)), info)
    g = torch.Generator().manual_seed(0)
    data = {"x": torch.rand(40, 784, generator=g), "y": torch.randint(0, 10, (40,), generator=g)}
    metrics = model.evaluate(data, info=info)
    assert {"test_accuracy", "test_error", "cross_coherence", "joint_coherence"} <= metrics.keys()
    assert all(0 <= metrics[k] <= 1 for k in ("cross_coherence", "joint_coherence"))
    assert "cross_coherence" not in model.evaluate(data, info=zoo.DataInfo("fashion-mnist", (784,), 10))
