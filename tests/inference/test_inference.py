"""Likelihood-free inference: LFVI and rejection ABC recover a known conjugate posterior; the vectorised
Gillespie simulator of Lotka–Volterra matches the exact laws of its pure birth and death special cases."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.inference import (
    LFVI,
    LV_TRUE_LOG_THETA,
    LotkaVolterra,
    gillespie_lotka_volterra,
    lv_summaries,
    rejection_abc,
)

N_OBS = 10  # y is the mean of 10 draws N(θ, 1); θ ~ N(0, 1): the posterior is N(10ȳ/11, 1/11)


def _simulate(theta: torch.Tensor) -> torch.Tensor:
    return theta + torch.randn(theta.shape[0], 1) / math.sqrt(N_OBS)


def _prior(b: int) -> torch.Tensor:
    return torch.randn(b, 1)


def test_lfvi_recovers_the_conjugate_gaussian_posterior() -> None:
    torch.manual_seed(0)
    lfvi = LFVI(_simulate, _prior, theta_dim=1, y_dim=1, hidden=(32, 32))
    history = lfvi.fit(600, batch_size=256)
    assert {"loss", "discriminator"} <= set(history[-1])
    sd = math.sqrt(1 / (N_OBS + 1))
    for y in (-1.0, 0.0, 1.0):
        s = lfvi.sample(torch.tensor([y]), 4000)
        assert s.shape == (4000, 1)
        assert abs(float(s.mean()) - N_OBS * y / (N_OBS + 1)) < 0.12, (y, float(s.mean()))
        assert 0.7 * sd < float(s.std()) < 1.35 * sd, (y, float(s.std()))
    assert lfvi.simulations == 1000 + 600 * 256


def test_lfvi_on_a_fixed_simulation_pool_recovers_the_conjugate_posterior() -> None:
    torch.manual_seed(0)
    lfvi = LFVI(_simulate, _prior, theta_dim=1, y_dim=1, hidden=(32, 32), pilot=500)
    lfvi.fit_pool(4000, steps=600, batch_size=256)
    assert lfvi.simulations == 500 + 4000  # the budget, however many steps
    sd = math.sqrt(1 / (N_OBS + 1))
    for y in (-1.0, 1.0):
        s = lfvi.sample(torch.tensor([y]), 4000)
        assert abs(float(s.mean()) - N_OBS * y / (N_OBS + 1)) < 0.15, (y, float(s.mean()))
        assert 0.6 * sd < float(s.std()) < 1.5 * sd, (y, float(s.std()))


def test_rejection_abc_recovers_the_conjugate_gaussian_posterior() -> None:
    torch.manual_seed(0)
    res = rejection_abc(_simulate, _prior, torch.tensor([1.0]), n_simulations=50_000, accept=0.01)
    assert res.simulations == 50_000 and res.samples.shape == (500, 1)
    assert abs(float(res.samples.mean()) - 10 / 11) < 0.06
    assert abs(float(res.samples.std()) - math.sqrt(1 / 11)) < 0.05
    summary = res.summary(0.9)
    assert summary["lower"][0] < 10 / 11 < summary["upper"][0]
    with pytest.raises(ValueError, match="accept"):
        rejection_abc(_simulate, _prior, torch.tensor([1.0]), 10, accept=0.0)


def test_gillespie_pure_death_and_pure_birth_match_their_exact_laws() -> None:
    # θ₁ = θ₄ = 0 (no interaction): predators die at rate θ₂ = 0.5 each, X(t) ~ Bin(50, e^{-θ₂t});
    # prey are born at rate θ₃ = 1 each (Yule): E Y(t) = 100 e^{t}, Var Y(t) = 100 e^{t}(e^{t} - 1)
    g = torch.Generator().manual_seed(0)
    log_theta = torch.tensor([-80.0, math.log(0.5), 0.0, -80.0]).expand(2000, 4)
    traj, ok = gillespie_lotka_volterra(log_theta, t_max=1.0, dt=0.5, generator=g)
    assert ok.all() and traj.shape == (2000, 3, 2)
    assert torch.equal(traj[:, 0], torch.tensor([50.0, 100.0]).expand(2000, 2))
    p = math.exp(-0.5)
    x1 = traj[:, 2, 0].double()
    assert abs(float(x1.mean()) - 50 * p) < 4 * math.sqrt(50 * p * (1 - p) / 2000)
    assert abs(float(x1.var()) - 50 * p * (1 - p)) < 0.15 * 50 * p * (1 - p)
    y1 = traj[:, 2, 1].double()
    var_y = 100 * math.e * (math.e - 1)
    assert abs(float(y1.mean()) - 100 * math.e) < 4 * math.sqrt(var_y / 2000)
    assert (traj[:, 1:, 0] <= traj[:, :-1, 0]).all() and (traj[:, 1:, 1] >= traj[:, :-1, 1]).all()


def test_lotka_volterra_runs_and_summaries() -> None:
    g = torch.Generator().manual_seed(0)
    lv = LotkaVolterra(t_max=4.0)
    s, ok = lv.simulate(LV_TRUE_LOG_THETA.expand(3, 4), generator=g)
    assert s.shape == (3, 9) and ok.all() and lv.calls == 3 and torch.isfinite(s).all()
    # extinction: with no prey births and fast predation the prey die out and the state freezes
    traj, ok = gillespie_lotka_volterra(torch.tensor([[-5.0, -5.0, -80.0, 1.0]]), t_max=2.0, generator=g)
    assert ok.all() and traj[0, -1, 1] == 0
    # a run that cannot finish within max_events is flagged
    _, ok = gillespie_lotka_volterra(LV_TRUE_LOG_THETA[None], t_max=30.0, max_events=50, generator=g)
    assert not ok.any()
    prior = lv.sample_prior(100, g)
    assert prior.shape == (100, 4) and prior.min() >= -5 and prior.max() <= 2
    stats = lv_summaries(torch.stack([torch.arange(10.0), 10 - torch.arange(10.0)], 1)[None])
    assert stats[0, 8] == pytest.approx(-1.0, abs=1e-5)  # perfectly anti-correlated series
    with pytest.raises(ValueError, match="log_theta must be"):
        gillespie_lotka_volterra(torch.zeros(3))
