"""Bounds on log p(x) checked against a linear-Gaussian model whose log p(x) is exact."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from linear_gaussian import LinearGaussian  # noqa: E402

from deepgm.errors import ObjectiveError
from deepgm.losses import ELBO, IWELBO, KL, E, LogProb, RenyiBound
from deepgm.models import log_likelihood


@pytest.fixture
def setup() -> tuple[LinearGaussian, torch.Tensor]:
    lg = LinearGaussian()
    z = torch.randn(64, lg.dz)
    x = z @ lg.W.T + lg.b + lg.sigma * torch.randn(64, lg.dx)
    return lg, x


def _mc(loss, x: torch.Tensor, n: int = 200) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([loss({"x": x}) for _ in range(n)]).mean(0)


def test_elbo_below_iwelbo_below_log_px_and_increasing_in_k(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    joint = p * prior
    exact = lg.exact_log_px(x).mean()
    elbo = _mc(ELBO(joint, q).mean(), x)
    bounds = [_mc(IWELBO(joint, q, k).mean(), x) for k in (1, 5, 50)]
    assert abs(float(bounds[0] - elbo)) < 0.05  # L_1 is the ELBO
    assert float(elbo) < float(bounds[1]) < float(bounds[2]) < float(exact)
    assert float(exact - bounds[2]) < float(exact - elbo) / 3


def test_elbo_equals_analytic_kl_form(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    a = _mc(ELBO(p * prior, q).mean(), x, 400)
    b = _mc((E(q, LogProb(p)) - KL(q, prior)).mean(), x, 400)
    assert torch.allclose(a, b, atol=0.05)


def test_exact_posterior_makes_elbo_tight() -> None:
    lg = LinearGaussian(dx=3, dz=1)
    x = torch.randn(16, 3)
    p, prior, q = lg.distributions(exact_q=True)
    elbo = ELBO(p * prior, q)({"x": x})
    assert torch.allclose(elbo, lg.exact_log_px(x), atol=1e-4)  # w is constant: every draw is exact


def test_log_likelihood_converges_to_exact(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    est = log_likelihood(p * prior, q, {"x": x}, k=5000, chunk=700)
    assert est.shape == (64,)
    assert torch.allclose(est.mean(), lg.exact_log_px(x).mean(), atol=0.02)
    few = log_likelihood(p * prior, q, {"x": x}, k=5, chunk=2)
    assert float(few.mean()) < float(est.mean())


def test_renyi_interpolates(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    joint = p * prior
    torch.manual_seed(3)
    iw = IWELBO(joint, q, 10)({"x": x})
    torch.manual_seed(3)
    r0 = RenyiBound(joint, q, 10, alpha=0.0)({"x": x})
    torch.manual_seed(3)
    r1 = RenyiBound(joint, q, 10, alpha=1.0)({"x": x})
    torch.manual_seed(3)
    rh = RenyiBound(joint, q, 10, alpha=0.5)({"x": x})
    assert torch.allclose(iw, r0, atol=1e-5)
    assert bool((r1 <= rh + 1e-5).all()) and bool((rh <= r0 + 1e-5).all())


def test_dreg_value_equals_iwelbo_and_p_gradient_matches(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    joint = p * prior
    lg.W.requires_grad_(True)
    grads = {}
    for est in ("plain", "dreg"):
        torch.manual_seed(5)
        lg.W.grad = None
        val = IWELBO(joint, q, 8, estimator=est)({"x": x}).mean()
        val.backward()
        grads[est] = (val.detach(), lg.W.grad.clone())
    assert torch.allclose(grads["plain"][0], grads["dreg"][0])
    assert torch.allclose(grads["plain"][1], grads["dreg"][1], atol=1e-5)


def test_dreg_encoder_gradient_matches_plain_in_expectation_with_less_variance(setup) -> None:
    lg, x = setup
    p, prior, q = lg.distributions()
    joint = p * prior
    A = q.net.A
    samples: dict[str, list[torch.Tensor]] = {"plain": [], "dreg": []}
    for est in samples:
        torch.manual_seed(11)
        for _ in range(300):
            A.grad = None
            IWELBO(joint, q, 10, estimator=est)({"x": x[:4]}).mean().backward()
            samples[est].append(A.grad.clone())
    plain, dreg = torch.stack(samples["plain"]), torch.stack(samples["dreg"])
    se = (plain.std(0) / 300**0.5 + dreg.std(0) / 300**0.5)
    assert bool(((plain.mean(0) - dreg.mean(0)).abs() < 4 * se + 1e-3).all())
    assert float(dreg.var(0).sum()) < float(plain.var(0).sum())


def test_dreg_rejects_hierarchical_q() -> None:
    lg = LinearGaussian()
    p, prior, q = lg.distributions()
    from deepgm.distributions import Normal

    q2 = Normal(var=["w"], cond_var=["z"], loc="z", scale=1.0, name="q")
    joint = Normal(var=["w"], loc=0.0, scale=1.0, features_shape=[lg.dz]) * p * prior.replace_var(z="z")
    with pytest.raises(ObjectiveError, match="one stochastic layer"):
        IWELBO(joint, q2 * q, 4, estimator="dreg")


def test_bad_k_and_mismatched_p() -> None:
    lg = LinearGaussian()
    p, prior, q = lg.distributions()
    with pytest.raises(ObjectiveError, match="k must be a positive int"):
        IWELBO(p * prior, q, 0)
    with pytest.raises(ObjectiveError, match="lacks"):
        IWELBO(prior.replace_var(z="w"), q, 3)
