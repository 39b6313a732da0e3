"""EnergyDistribution: energies and normalised densities against closed forms, sampling (also as a prior in a
joint and conditioned), the grid normaliser, and the errors for what it cannot do or is given wrongly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import MALA, EnergyDistribution, Env, Langevin, Normal
from deepgm.errors import MissingVariableError, ParameterError, ShapeError, SupportError
from deepgm.losses import E, LogProb

PREC = torch.tensor([[2.0, 0.5], [0.5, 1.0]])


def quad(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((x @ PREC) * x).sum(-1)


def _gaussian(**kw: object) -> EnergyDistribution:
    return EnergyDistribution(var=["x"], energy=quad, event_shape=[2], **kw)  # type: ignore[arg-type]


def test_log_prob_needs_a_normaliser_and_with_it_is_the_gaussian_density() -> None:
    p = _gaussian()
    x = torch.randn(6, 2)
    with pytest.raises(ParameterError, match=r"unnormalised: log_prob needs its log-normaliser"):
        p.log_prob({"x": x})
    assert torch.allclose(p.unnormalized_log_prob({"x": x}), -quad(x))
    log_z = 0.5 * math.log((2 * math.pi) ** 2 / float(torch.linalg.det(PREC)))
    ref = torch.distributions.MultivariateNormal(torch.zeros(2), precision_matrix=PREC).log_prob(x)
    assert torch.allclose(p.with_log_normalizer(log_z).log_prob({"x": x}), ref, atol=1e-5)
    assert torch.allclose(_gaussian(log_normalizer=log_z).log_prob({"x": x}), ref, atol=1e-5)
    assert not p.normalized  # with_log_normalizer made a copy


def test_grid_normaliser_matches_the_closed_form() -> None:
    log_z = 0.5 * math.log((2 * math.pi) ** 2 / float(torch.linalg.det(PREC)))
    assert abs(float(_gaussian().grid_log_normalizer([(-7, 7), (-9, 9)], 300)) - log_z) < 1e-3


def test_sample_runs_the_sampler_and_reaches_the_target() -> None:
    torch.manual_seed(0)
    p = _gaussian(sampler=MALA(step_size=0.2, steps=300))
    x = p.sample(batch_n=3000)["x"]
    assert x.shape == (3000, 2)
    assert torch.allclose(torch.cov(x.T), torch.linalg.inv(PREC), atol=0.06)
    assert p.sample(sample_shape=4, batch_n=5)["x"].shape == (4, 5, 2)


def test_an_energy_prior_in_a_joint_samples_and_scores() -> None:
    torch.manual_seed(1)
    prior = EnergyDistribution(var=["z"], energy=quad, event_shape=[2], sampler=Langevin(step_size=0.1, steps=20),
                               log_normalizer=1.0, name="p_z")
    lik = Normal(var=["x"], cond_var=["z"], loc="z", scale=0.5)
    joint = lik * prior
    out = joint.sample(batch_n=7)
    assert out["z"].shape == (7, 2) and out["x"].shape == (7, 2)
    expected = lik.log_prob(out) + (-quad(out["z"]) - 1.0)
    assert torch.allclose(joint.log_prob(out), expected)
    f = LogProb(lik)
    assert float((E(prior, f) - E(prior, f))({"x": out["x"]}).abs().sum()) == 0.0  # one shared draw


class CondEnergy(nn.Module):
    """E(x|y) = ½‖x - y‖²: p(x|y) = N(y, I)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x - y) ** 2).sum(-1)


def test_a_conditional_energy_samples_one_row_per_condition_and_folds_sample_dims() -> None:
    torch.manual_seed(2)
    p = EnergyDistribution(var=["x"], cond_var=["y"], energy=CondEnergy(), event_shape=[2],
                           sampler=MALA(step_size=0.3, steps=200))
    y = torch.tensor([[5.0, 5.0], [-5.0, 0.0]]).repeat(500, 1)
    x = p.sample({"y": y})["x"]
    assert x.shape == (1000, 2)
    assert torch.allclose(x[0::2].mean(0), torch.tensor([5.0, 5.0]), atol=0.15)
    assert torch.allclose(x[1::2].mean(0), torch.tensor([-5.0, 0.0]), atol=0.15)
    env = Env({"y": y[:3]})
    env.set("x", torch.zeros(4, 3, 2), sdim=1)  # 4 draws per row of y
    assert torch.allclose(p.energy_at(env), 0.5 * (y[:3] ** 2).sum(-1).expand(4, 3))
    with pytest.raises(MissingVariableError, match="needs the variable 'y'"):
        p.energy({"x": torch.zeros(3, 2)})


def test_bad_values_and_options_raise_named_errors() -> None:
    p = _gaussian()
    with pytest.raises(ShapeError, match=r"variable 'x' has shape \(4, 3\), expected \(batch, 2\)"):
        p.energy({"x": torch.zeros(4, 3)})
    with pytest.raises(SupportError, match="variable 'x' must be finite"):
        p.energy({"x": torch.tensor([[0.0, math.nan]])})
    with pytest.raises(ParameterError, match="log_normalizer must be finite"):
        _gaussian(log_normalizer=math.inf)
    with pytest.raises(ParameterError, match="init must be"):
        _gaussian(init="gamma")
    bad = EnergyDistribution(var=["x"], energy=lambda x: x, event_shape=[2])
    with pytest.raises(ShapeError, match=r"one value per row"):
        bad.energy({"x": torch.zeros(4, 2)})
    with pytest.raises(ShapeError, match="grid normaliser needs"):
        EnergyDistribution(var=["x"], energy=lambda x: x.sum(-1), event_shape=[3]).grid_log_normalizer([(0, 1)] * 3)


def test_learned_log_normalizer_is_a_parameter() -> None:
    p = _gaussian(log_normalizer="learn")
    assert [n for n, _ in p.named_parameters()] == ["log_z"]
    (-p.log_prob({"x": torch.zeros(2, 2)}).sum()).backward()
    assert p.log_z is not None and p.log_z.grad is not None and float(p.log_z.grad) == 2.0
