"""The energy objectives against closed forms on Gaussian energies: exact score matching and NCE recover the
parameters (NCE also log Z), sliced and denoising score matching agree with exact score matching in
expectation, contrastive divergence's gradient stops at the samples and its fit finds the mean."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import MALA, EnergyDistribution, Langevin, Normal
from deepgm.errors import ObjectiveError
from deepgm.losses import NCE, ContrastiveDivergence, DenoisingScoreMatching, Energy, ScoreMatching
from deepgm.nn import MLP


class GaussianEnergy(nn.Module):
    """``E(x) = ½ (x - μ)ᵀ L Lᵀ (x - μ)`` with learnable μ and L."""

    def __init__(self, dim: int, loc: float = 0.0, chol: float = 1.0) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.full((dim,), loc))
        self.chol = nn.Parameter(torch.eye(dim) * chol)

    @property
    def precision(self) -> torch.Tensor:
        lower = torch.tril(self.chol)
        return lower @ lower.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self.loc
        return 0.5 * ((d @ self.precision) * d).sum(-1)


torch.manual_seed(123)
MLP_NET = MLP([3, 16, 16, 1], act="silu")  # a fixed smooth energy network


def _data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mean, cov = torch.tensor([1.0, -0.5]), torch.tensor([[0.5, 0.2], [0.2, 0.3]])
    x = mean + torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(cov).T
    return x, x.mean(0), torch.cov(x.T, correction=0)


def _fit_lbfgs(loss_fn, params: list[nn.Parameter], iters: int = 60) -> None:  # type: ignore[no-untyped-def]
    opt = torch.optim.LBFGS(params, max_iter=iters, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss_fn()
        value.backward()
        return value

    opt.step(closure)


def test_exact_score_matching_recovers_the_mean_and_precision() -> None:
    x, mean, cov = _data(2000)
    net = GaussianEnergy(2)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[2])
    loss = ScoreMatching(p).mean()
    _fit_lbfgs(lambda: loss(x=x), list(net.parameters()))
    # the minimiser of the empirical objective is exactly the sample mean and inverse sample covariance
    assert torch.allclose(net.loc.detach(), mean, atol=1e-3)
    assert torch.allclose(net.precision.detach(), torch.linalg.inv(cov), rtol=1e-3, atol=1e-3)


def test_exact_score_matching_value_is_the_closed_form() -> None:
    net = GaussianEnergy(2, loc=0.5, chol=1.5)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[2])
    x = torch.randn(7, 2)
    a = net.precision.detach()
    expected = 0.5 * (((x - 0.5) @ a) ** 2).sum(-1) - torch.trace(a)
    assert torch.allclose(ScoreMatching(p)(x=x).detach(), expected, atol=1e-5)


@pytest.mark.parametrize("directions", ["rademacher", "gaussian"])
def test_sliced_score_matching_is_exact_score_matching_in_expectation(directions: str) -> None:
    torch.manual_seed(0)
    p = EnergyDistribution(var=["x"], energy=lambda x: MLP_NET(x)[:, 0], event_shape=[3])
    x = torch.randn(64, 3)
    exact = float(ScoreMatching(p)(x=x).mean().detach())
    sliced_sm = ScoreMatching(p, method="sliced", projections=400, directions=directions)  # type: ignore[arg-type]
    sliced = float(sliced_sm(x=x).mean().detach())
    assert abs(sliced - exact) < 0.03 * abs(exact) + 0.02, (sliced, exact)



def test_denoising_score_matching_gradient_equals_exact_score_matching_on_noisy_data() -> None:
    """DSM = exact SM of the data convolved with N(0, σ²I) + a constant: equal gradients in expectation."""
    torch.manual_seed(1)
    sigma, n = 0.3, 200_000
    x, _, _ = _data(n, seed=2)
    net = GaussianEnergy(2, loc=0.3, chol=1.2)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[2])
    dsm = DenoisingScoreMatching(p, sigma).mean()(x=x)
    g_dsm = torch.autograd.grad(dsm, list(net.parameters()))
    esm = ScoreMatching(p).mean()(x=x + sigma * torch.randn_like(x))
    g_esm = torch.autograd.grad(esm, list(net.parameters()))
    for a, b in zip(g_dsm, g_esm):
        assert torch.allclose(a, b, atol=0.03 * float(b.abs().max()) + 0.01), (a, b)


def test_nce_recovers_a_gaussians_mean_precision_and_log_normaliser() -> None:
    torch.manual_seed(3)
    x = 1.0 + 0.5 * torch.randn(4000, 1)  # N(1, 0.25): precision 4, log Z = ½ log(2π / 4)
    net = GaussianEnergy(1, loc=0.0, chol=1.0)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[1], log_normalizer="learn")
    noise = Normal(var=["x"], loc=0.0, scale=2.0, features_shape=[1], name="q")
    loss = NCE(p, noise, nu=4).mean()
    opt = torch.optim.Adam(p.parameters(), lr=0.03)
    for i in range(600):
        if i == 400:
            opt.param_groups[0]["lr"] = 0.005
        opt.zero_grad()
        loss(x=x).backward()
        opt.step()
    assert abs(float(net.loc.detach()) - float(x.mean())) < 0.05
    assert abs(float(net.precision.detach()) - 4.0) < 0.4
    assert p.log_z is not None and abs(float(p.log_z.detach()) - 0.5 * math.log(2 * math.pi / 4)) < 0.06


def test_contrastive_divergence_gradient_stops_at_the_negative_samples() -> None:
    torch.manual_seed(4)
    net = GaussianEnergy(2, loc=0.5)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[2], sampler=Langevin(step_size=0.1, steps=5))
    cd = ContrastiveDivergence(p, init="noise")
    x = torch.randn(8, 2) + 2.0
    cd.mean()(x=x).backward()
    neg = cd.last_negatives
    assert neg is not None and not neg.requires_grad
    a = net.precision.detach()
    # ∂/∂μ of mean(E(x) - E(x̃)) = -A (mean(x) - mean(x̃)): no term from how x̃ depends on μ
    expected = -a @ (x.mean(0) - neg.mean(0))
    assert net.loc.grad is not None and torch.allclose(net.loc.grad, expected, atol=1e-5)


def test_persistent_contrastive_divergence_fits_the_mean_and_fills_its_buffer() -> None:
    torch.manual_seed(5)
    x, mean, _ = _data(1000)
    net = GaussianEnergy(2, loc=0.0, chol=1.5)
    p = EnergyDistribution(var=["x"], energy=net, event_shape=[2], sampler=MALA(step_size=0.1, steps=5))
    cd = ContrastiveDivergence(p, init="buffer", capacity=500, reinit_prob=0.0)
    loss = cd.mean()
    opt = torch.optim.Adam([net.loc], lr=0.05)  # precision fixed: the fit moves the mean only
    for _ in range(200):
        opt.zero_grad()
        loss(x=x[torch.randint(0, 1000, (200,))]).backward()
        opt.step()
    assert torch.allclose(net.loc.detach(), mean, atol=0.1), net.loc
    assert cd.buffer is not None and bool(cd.buffer.filled) and cd.own_modules() == (cd.buffer,)


def test_objectives_print_and_refuse_bad_options() -> None:
    p = EnergyDistribution(var=["x"], energy=lambda x: (x ** 2).sum(-1), event_shape=[2])
    assert str(Energy(p)) == "E_p(x)"
    assert "PCD" in ContrastiveDivergence(p, steps=20).to_latex() and "20" in str(ContrastiveDivergence(p, steps=20))
    assert r"\operatorname{tr}" in ScoreMatching(p).to_latex()
    assert "sigma" not in DenoisingScoreMatching(p, 0.1).to_latex() and "0.1" in str(DenoisingScoreMatching(p, 0.1))
    with pytest.raises(ObjectiveError, match="init must be 'data', 'noise' or 'buffer'"):
        ContrastiveDivergence(p, init="prior")  # type: ignore[arg-type]
    with pytest.raises(ObjectiveError, match="alpha must be"):
        ContrastiveDivergence(p, alpha=-1.0)
    with pytest.raises(ObjectiveError, match="noise_std must be a finite number > 0"):
        DenoisingScoreMatching(p, 0.0)
    with pytest.raises(ObjectiveError, match="method='exact'.*use method='sliced'"):
        ScoreMatching(EnergyDistribution(var=["x"], energy=lambda x: x.sum(-1), event_shape=[784]))
    with pytest.raises(ObjectiveError, match="log_normalizer='learn'"):
        NCE(p, Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2]))
    with pytest.raises(ObjectiveError, match="needs an EnergyDistribution"):
        ScoreMatching(Normal(var=["x"], loc=0.0, scale=1.0))  # type: ignore[arg-type]
