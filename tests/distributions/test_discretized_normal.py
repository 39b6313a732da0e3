"""The discretised Gaussian decoder: its 256 probabilities sum to one for any location and scale, each
is the Gaussian's mass over its interval, and draws land on the levels with those frequencies."""

from __future__ import annotations

import pytest
import torch

from deepgm.distributions import DiscretizedNormal, has_analytic_kl
from deepgm.errors import ParameterError, SupportError

LEVELS = torch.arange(256, dtype=torch.float32) / 255


@pytest.mark.parametrize(("loc", "scale"), [(0.5, 0.01), (0.0, 0.002), (1.3, 0.05), (-0.4, 2.0), (0.37, 1e-4)])
def test_probabilities_over_the_256_levels_sum_to_one(loc: float, scale: float) -> None:
    p = DiscretizedNormal(var=["x"], loc=torch.tensor([loc]), scale=torch.tensor([scale]), low=0.0, high=1.0)
    probs = p.log_prob({"x": LEVELS.reshape(256, 1)}).double().exp()
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)


def test_each_probability_is_the_gaussian_mass_over_its_interval() -> None:
    loc, scale = torch.tensor([0.3]), torch.tensor([0.05])
    p = DiscretizedNormal(var=["x"], loc=loc, scale=scale, low=0.0, high=1.0)
    normal = torch.distributions.Normal(loc.double(), scale.double())
    half = 0.5 / 255
    for k in (0, 40, 77, 255):
        v = k / 255
        upper = 1.0 if k == 255 else float(normal.cdf(torch.tensor(v + half, dtype=torch.float64)))
        lower = 0.0 if k == 0 else float(normal.cdf(torch.tensor(v - half, dtype=torch.float64)))
        got = float(p.log_prob({"x": torch.tensor([[v]])}).exp())
        assert got == pytest.approx(upper - lower, rel=1e-3, abs=1e-12)


def test_far_tail_levels_keep_a_finite_log_probability() -> None:
    p = DiscretizedNormal(var=["x"], loc=torch.tensor([0.0]), scale=torch.tensor([0.001]), low=0.0, high=1.0)
    lp = p.log_prob({"x": torch.tensor([[0.2]])})  # 200 standard deviations away
    assert torch.isfinite(lp).all() and float(lp) < -1e4


def test_draws_fall_on_the_levels_with_their_probabilities() -> None:
    torch.manual_seed(0)
    p = DiscretizedNormal(var=["x"], loc=torch.tensor([0.1]), scale=torch.tensor([0.004]), low=0.0, high=1.0)
    x = p.sample(batch_n=20000)["x"]
    k = (x * 255).round()
    assert torch.allclose(x * 255, k, atol=1e-4)
    freq = torch.bincount(k.long().flatten(), minlength=256).float() / 20000
    probs = p.log_prob({"x": LEVELS.reshape(256, 1)}).exp()
    assert torch.allclose(freq, probs, atol=0.01)


def test_refuses_values_outside_its_range_and_bad_options() -> None:
    p = DiscretizedNormal(var=["x"], loc=torch.zeros(1), scale=torch.ones(1), low=0.0, high=1.0)
    with pytest.raises(SupportError, match=r"variable 'x' must lie in \[0, 1\]"):
        p.log_prob({"x": torch.tensor([[1.5]])})
    with pytest.raises(ParameterError, match="levels must be an integer of at least 2"):
        DiscretizedNormal(var=["x"], loc=0.0, scale=1.0, levels=1)
    with pytest.raises(ParameterError, match="scale' must satisfy > 0"):
        DiscretizedNormal(var=["x"], loc=0.0, scale=0.0)


def test_has_no_analytic_kl_with_a_normal() -> None:
    from deepgm.distributions import Normal

    p = DiscretizedNormal(var=["x"], loc=torch.zeros(1), scale=torch.ones(1))
    assert not has_analytic_kl(p, Normal(var=["x"], loc=torch.zeros(1), scale=torch.ones(1)))
