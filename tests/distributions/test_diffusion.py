"""DDPM's Gaussian diffusion, checked against independent computations: the forward marginal against t
composed single steps, the posterior against Gaussian conditioning of the joint, the analytic KL terms
against Monte Carlo, and — with the exact noise predictor of Gaussian data — the bound against the data's
exact entropy, the samples against the data's moments, and DDIM's determinism."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import DiffusionProcess, NoiseSchedule
from deepgm.distributions.diffusion import ddim_timesteps
from deepgm.errors import ConfigError
from deepgm.losses import KL
from deepgm.models.diffusion import diffusion_bound

MU, SD = 0.1, 0.3  # the test data: N(MU, SD²) in the process's space [-1, 1], quantised to 256 levels


class GaussianEps(nn.Module):
    """The optimal ε_θ for x_0 ~ N(μ, s²): E[ε|x_t] = √(1-ᾱ)(x_t - √ᾱ μ)/(ᾱ s² + 1 - ᾱ)."""

    def __init__(self, s: NoiseSchedule, mu: float = MU, sd: float = SD) -> None:
        super().__init__()
        self.s, self.mu, self.sd = s, mu, sd

    def forward(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.s.at(self.s.alpha_bar, t)
        return (1 - abar).sqrt() * (xt - abar.sqrt() * self.mu) / (abar * self.sd**2 + 1 - abar)


def _level_probs(levels: int = 256) -> torch.Tensor:
    """P(level k) of N(MU, SD²) quantised to the nearest of 256 levels of [-1, 1] (end bins unbounded)."""
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    half = 1 / (levels - 1)
    upper, lower = torch.special.ndtr((grid + half - MU) / SD), torch.special.ndtr((grid - half - MU) / SD)
    upper[-1], lower[0] = 1.0, 0.0
    return upper - lower


def _gaussian_data(n: int, d: int) -> tuple[torch.Tensor, float]:
    """``n`` rows of ``d`` quantised Gaussian values as grey levels in [0, 1], and the exact entropy per value."""
    p = _level_probs()
    k = torch.multinomial(p.float(), n * d, replacement=True).reshape(n, d)
    return k.float() / 255, float(-(p * p.clamp_min(1e-300).log()).sum())


def _process(steps: int, dim: int = 4) -> DiffusionProcess:
    s = NoiseSchedule.linear(steps, 1e-4 * 1000 / steps, min(0.02 * 1000 / steps, 0.999))  # about the same ᾱ_T
    return DiffusionProcess(s, GaussianEps(s), dim=dim)


def test_forward_marginal_matches_composing_t_single_steps() -> None:
    s = NoiseSchedule.linear(200)
    x = torch.rand(1, 3)
    x0 = (2 * x - 1).double()
    proc = DiffusionProcess(s, GaussianEps(s), dim=3)
    for t in (1, 7, 50, 200):
        mean, var = x0.clone(), torch.zeros_like(x0)  # the recursion x_t = √α_t x_{t-1} + √β_t ε, in float64
        for b in s.betas[:t].double():
            mean, var = (1 - b).sqrt() * mean, (1 - b) * var + b
        params = proc.q_t.params({"x": x, "t": torch.tensor([[t]])})
        assert torch.allclose(params["loc"].double(), mean, atol=1e-5)
        assert torch.allclose(params["scale"].double() ** 2, var, atol=1e-5)
    torch.manual_seed(0)  # and by simulation: 20000 chains of 50 single steps
    chains = x0.float().expand(20000, 3).clone()
    for b in s.betas[:50]:
        chains = (1 - b).sqrt() * chains + b.sqrt() * torch.randn_like(chains)
    params = proc.q_t.params({"x": x, "t": torch.tensor([[50]])})
    assert torch.allclose(chains.mean(0), params["loc"][0], atol=0.01)
    assert torch.allclose(chains.std(0), params["scale"][0], atol=0.01)


def test_posterior_equals_the_gaussian_conditioning_of_the_joint() -> None:
    s = NoiseSchedule.linear(100)
    proc = DiffusionProcess(s, GaussianEps(s), dim=2)
    x, xt = torch.tensor([[0.2, 0.9]]), torch.tensor([[0.5, -1.3]])
    x0 = (2 * x - 1).double()
    for t in (2, 10, 100):
        b, abar_prev = s.betas[t - 1].double(), s.alpha_bar_prev[t - 1].double()
        # (x_{t-1}, x_t) | x_0 is jointly Gaussian: condition with the Schur complement
        m1, v1 = abar_prev.sqrt() * x0, 1 - abar_prev
        cov = (1 - b).sqrt() * v1
        v2 = (1 - b) * v1 + b
        mean = m1 + cov / v2 * (xt.double() - (1 - b).sqrt() * m1)
        var = v1 - cov**2 / v2
        params = proc.posterior.params({"x_t": xt, "x": x, "t": torch.tensor([[t]])})
        assert torch.allclose(params["loc"].double(), mean, atol=1e-5, rtol=1e-4)
        assert torch.allclose(params["scale"].double() ** 2, var.expand_as(mean), rtol=1e-4)


def test_reverse_mean_is_the_posterior_mean_at_the_predicted_x0() -> None:
    s = NoiseSchedule.linear(100)
    xt, eps, t = torch.randn(5, 3), torch.randn(5, 3), torch.full((5, 1), 37)
    via_x0 = s.posterior(s.predict_x0(xt, t, eps), xt, t)[0]
    assert torch.allclose(s.reverse_mean(xt, t, eps), via_x0, atol=1e-5)


def test_analytic_kl_terms_match_monte_carlo() -> None:
    torch.manual_seed(0)
    proc = _process(100, dim=3)
    inputs = {"x": torch.rand(4, 3), "x_t": torch.randn(4, 3), "t": torch.tensor([[2], [10], [50], [100]])}
    analytic = KL(proc.posterior, proc.reverse, analytic=True)(inputs)
    mc = KL(proc.posterior, proc.reverse, analytic=False, sample_shape=200_000)(inputs)
    assert torch.allclose(analytic, mc, rtol=0.03, atol=0.01), (analytic, mc)
    x = {"x": torch.rand(4, 3)}
    assert torch.allclose(KL(proc.q_T, proc.prior)(x), KL(proc.q_T, proc.prior, analytic=False,
                                                            sample_shape=200_000)(x), atol=0.01)


def test_bound_with_the_true_noise_predictor_is_above_and_close_to_the_exact_nll() -> None:
    torch.manual_seed(0)
    x, entropy = _gaussian_data(2000, 4)  # exact NLL of the data under their own distribution: the entropy
    with torch.no_grad():
        per_value = {steps: diffusion_bound(_process(steps), exact=True)(x=x) / 4 for steps in (10, 1000)}
    mean, se = float(per_value[1000].mean()), float(per_value[1000].std()) / math.sqrt(2000)
    assert mean > entropy - 3 * se  # E[bound] >= cross-entropy >= entropy
    assert mean - entropy < 0.15  # within 3% of the 5.06 nats per value
    assert float(per_value[10].mean()) - entropy > 2 * (mean - entropy)  # and tighter for large T


def test_ancestral_samples_reproduce_the_datas_mean_and_variance() -> None:
    torch.manual_seed(0)
    x = _process(1000).sample_ancestral(5000, clip=False)  # grey levels: mean (1 + μ)/2, sd s/2
    assert abs(float(x.mean()) - (1 + MU) / 2) < 0.005 and abs(float(x.std()) - SD / 2) < 0.005


def test_ddim_with_all_steps_and_eta_0_is_deterministic_given_x_T() -> None:
    proc = _process(200)
    x_T = torch.randn(3000, 4)
    torch.manual_seed(1)
    a = proc.sample_ddim(3000, eta=0.0, clip=False, x_T=x_T)
    torch.manual_seed(2)
    b = proc.sample_ddim(3000, eta=0.0, clip=False, x_T=x_T)
    torch.manual_seed(3)
    noisy = proc.sample_ddim(3000, eta=1.0, clip=False, x_T=x_T)
    assert torch.equal(a, b) and not torch.allclose(a, noisy)
    assert abs(float(a.mean()) - (1 + MU) / 2) < 0.005 and abs(float(a.std()) - SD / 2) < 0.005


def test_ddim_takes_a_strided_subsequence_of_the_steps() -> None:
    assert ddim_timesteps(10, 10) == list(range(10, 0, -1))
    steps = ddim_timesteps(1000, 50)
    assert len(steps) == 50 and steps[0] == 1000 and steps[-1] == 1
    assert len({a - b for a, b in zip(steps, steps[1:])}) <= 2  # evenly spaced, up to rounding
    assert ddim_timesteps(7, 1) == [7]


@pytest.mark.parametrize(("make", "option", "expected"), [
    (lambda: NoiseSchedule.linear(10, beta_start=0.0), "beta_start", r"a number in \(0, 1\)"),
    (lambda: NoiseSchedule.linear(10, beta_end=1.5), "beta_end", r"a number in \(0, 1\)"),
    (lambda: NoiseSchedule([0.1, 1.0]), "betas", r"numbers in \(0, 1\)"),
    (lambda: NoiseSchedule.linear(0), "steps", "an integer of at least 1"),
    (lambda: NoiseSchedule.cosine(-3), "steps", "an integer of at least 1"),
    (lambda: ddim_timesteps(100, 101), "steps", r"an integer in \[1, T\] = \[1, 100\]"),
    (lambda: _process(10).sample_ddim(2, steps=11), "steps", r"an integer in \[1, T\] = \[1, 10\]"),
    (lambda: _process(10).sample_ddim(2, eta=2.0), "eta", r"a number in \[0, 1\]"),
    (lambda: DiffusionProcess(NoiseSchedule.linear(5), nn.Identity(), 4, variance="large"), "variance",
     "'beta' or 'posterior'"),
])
def test_bad_options_raise_errors_naming_the_option_and_what_was_expected(make: object, option: str,
                                                                          expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"{option} must be {expected}") as err:
        make()  # type: ignore[operator]
    assert err.value.option == option


def test_cosine_schedule_decreases_alpha_bar_to_near_zero() -> None:
    s = NoiseSchedule.cosine(1000)
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all()) and float(s.alpha_bar[-1]) < 1e-3
    assert float(s.betas.max()) == pytest.approx(0.999)  # capped at max_beta
