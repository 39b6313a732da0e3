"""The flow models of the zoo train a few steps, sample, and print their objective — under the same
conditions as tests/zoo/test_zoo.py, which runs them once they are imported in deepgm.zoo."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import deepgm.zoo.ffjord
import deepgm.zoo.maf
import deepgm.zoo.nice
import deepgm.zoo.realnvp
import deepgm.zoo.vae_flow  # noqa: F401  (registers the models)
from deepgm import zoo
from deepgm.data import toy_2d
from deepgm.models import FlowModel

NAMES = ["nice", "realnvp", "maf", "vae-flow", "ffjord"]
SMALL = {"z_dim": 2, "hidden": (16,)}


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (64,), generator=g)
    protos = torch.rand(3, 20, generator=g)
    return {"x": torch.bernoulli(protos[y], generator=g)}


def _build(name: str, data: zoo.DataInfo, **extra: object) -> torch.nn.Module:
    entry = zoo.get(name)
    fields = {f.name for f in dataclasses.fields(entry.config)}
    cfg = entry.config(**{k: v for k, v in {**SMALL, **extra}.items() if k in fields}, lr=1e-2)
    return entry.build(cfg, data)


@pytest.mark.parametrize("name", NAMES)
def test_flow_model_trains_samples_and_prints(name: str) -> None:
    model = _build(name, zoo.DataInfo("toy", (20,), n_classes=3))
    batch = _data()
    torch.manual_seed(0)
    first = sum(model.eval_step(batch) for _ in range(5)) / 5
    for _ in range(150):
        model.train_step(batch)
    torch.manual_seed(0)
    last = sum(model.eval_step(batch) for _ in range(5)) / 5
    assert last < first, (name, first, last)
    x = model.generate(5)
    assert x.shape == (5, 20)
    if name != "vae-flow":  # dequantised data: samples come back on the data's grid
        assert ((x == 0) | (x == 1) | ((x > 0) & (x < 1))).all()
    assert model.loss.to_latex()


@pytest.mark.parametrize("name", ["maf", "realnvp", "nice", "ffjord"])
def test_flow_models_fit_a_2d_toy(name: str) -> None:
    x = toy_2d("moons", 256, seed=0)
    model = _build(name, zoo.DataInfo("toy", (2,), binary=False), hidden=(32,), steps=1)
    assert isinstance(model, FlowModel)
    first = model.eval_step({"x": x})
    for _ in range(40):
        model.train_step({"x": x})
    assert model.eval_step({"x": x}) < first - 0.1
    ll = model.log_likelihood(x[:10])
    assert ll.shape == (10,) and torch.isfinite(ll).all()
    assert model.generate(7).shape == (7, 2)


def test_realnvp_is_multiscale_on_square_images_and_reports_bits_per_dim() -> None:
    torch.manual_seed(0)
    x = torch.randint(0, 256, (16, 64)).float() / 255
    model = _build("realnvp", zoo.DataInfo("digits", (64,)), hidden=(8,), levels=2, couplings=1)
    assert "FactorOut" in repr(model.flow.transform)
    before = model.bits_per_dim(x)
    for _ in range(3):
        model.train_step({"x": x})
    after = model.bits_per_dim(x)
    assert 0 < after < before, (before, after)
    assert model.generate(3).shape == (3, 64)


def test_ffjord_regularisers_enter_the_objective() -> None:
    x = toy_2d("8gaussians", 64, seed=0)
    model = _build("ffjord", zoo.DataInfo("toy", (2,), binary=False), kinetic=0.1, jacobian=0.1, steps=2)
    assert "R_KJ" in str(model.loss)
    plain = _build("ffjord", zoo.DataInfo("toy", (2,), binary=False), steps=2)
    plain.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    a = model.eval_step({"x": x})
    torch.manual_seed(0)
    b = plain.eval_step({"x": x})
    assert a > b
    model.train_step({"x": x})
