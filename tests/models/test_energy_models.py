"""EnergyModel and RBMModel report test metrics that name their estimator, and the numbers are the right ones
on models whose likelihood is known in closed form."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from deepgm.data import DataInfo
from deepgm.distributions import RBM, EnergyDistribution, Langevin
from deepgm.losses import ContrastiveDivergence, ScoreMatching
from deepgm.models.energy import EnergyModel, RBMModel


class Quadratic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.log_prec = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.log_prec.exp() * (x ** 2).sum(-1)


def test_energy_model_reports_the_grid_nll_of_a_known_gaussian_and_draws_its_density(tmp_path: Path) -> None:
    torch.manual_seed(0)
    p = EnergyDistribution(var=["x"], energy=Quadratic(), event_shape=[2], sampler=Langevin(step_size=0.05, steps=50))
    model = EnergyModel(p, ScoreMatching(p).mean(), grid_points=400)
    x = torch.randn(500, 2) * 2.0  # a wide test set: the grid covers N(0, I)'s mass
    metrics = model.evaluate({"x": x})
    exact_nll = float(0.5 * (x ** 2).sum(-1).mean() + math.log(2 * math.pi))
    assert abs(metrics["test_nll_grid"] - exact_nll) < 1e-3
    assert "midpoint rule on a 400x400 grid" in metrics["likelihood"] and "test_loss" in metrics
    paths = model.figures(tmp_path, {"x": x}, DataInfo("toy", (2,), binary=False))
    assert [q.name for q in paths] == ["density.png"] and paths[0].stat().st_size > 0
    assert model.generate(7).shape == (7, 2)


def test_energy_model_on_images_reports_sample_metrics_and_says_it_has_no_likelihood() -> None:
    torch.manual_seed(1)
    p = EnergyDistribution(var=["x"], energy=Quadratic(), event_shape=[16],
                           sampler=Langevin(step_size=0.01, steps=5))
    model = EnergyModel(p, ContrastiveDivergence(p, init="data").mean(), optimizer_params={"lr": 1e-3})
    metrics = model.evaluate({"x": torch.rand(40, 16)})
    assert metrics["likelihood"].startswith("unnormalised") and metrics["test_mmd2"] >= 0


def test_rbm_model_names_the_ais_estimator_and_matches_the_exact_likelihood() -> None:
    torch.manual_seed(2)
    rbm = RBM(["x"], visible=10, hidden=5, init_std=0.5)
    model = RBMModel(rbm, ContrastiveDivergence(rbm, init="data", steps=1).mean(), init_visible_bias=True,
                     optimizer=torch.optim.SGD, optimizer_params={"lr": 0.0})
    x = torch.bernoulli(torch.full((30, 10), 0.4))
    model.train_step({"x": x})  # lr 0: only the visible biases move, to the data's smoothed logits
    expected = torch.logit((x.sum(0) + 2.5) / 35)
    assert torch.allclose(rbm.visible_bias.detach(), expected, atol=1e-5)
    assert float(model.data_count) == 30
    metrics = model.evaluate({"x": x}, ais_chains=100, ais_temperatures=1000)
    assert metrics["ais_chains"] == 100 and metrics["ais_temperatures"] == 1000
    assert metrics["likelihood"] == "AIS (Salakhutdinov & Murray 2008), 100 chains, 1000 temperatures"
    assert abs(metrics["test_loglik_ais"] - metrics["test_loglik_exact"]) < 0.05
    lo, hi = metrics["log_z_ais_3se"]
    assert (lo is None or lo <= metrics["log_z_ais"]) and metrics["log_z_ais"] <= hi
