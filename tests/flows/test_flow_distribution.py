"""Flow as a deepgm distribution: exact log-density, sampling, conditioning, use inside objectives."""

from __future__ import annotations

import pytest
import torch

from deepgm.data import toy_2d
from deepgm.distributions import Bernoulli, Env, Normal
from deepgm.flows import (
    IAF,
    MAF,
    AffineCoupling,
    Dequantize,
    Flow,
    InvertibleConv1x1,
    Logit,
    NotInvertibleError,
    RadialFlow,
    ReversePermutation,
    RQSplineCoupling,
    StandardLogistic,
    alternating_mask,
    flow_posterior,
    inpaint,
    inpaint_sample,
)
from deepgm.losses import IWELBO, KL, E, LogProb
from deepgm.models import ML, VAE
from deepgm.nn import MLP, LogitsHead


def _std(var: str = "u", dim: int = 2) -> Normal:
    return Normal(var=[var], loc=0.0, scale=1.0, features_shape=[dim], name="p_u")


def _randomise(m: torch.nn.Module, scale: float = 0.3) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def _flow2d(context_dim: int = 0, cond: tuple[str, ...] = ()) -> Flow:
    ts = [AffineCoupling(alternating_mask(2, 0), hidden=(16,), context_dim=context_dim),
          RQSplineCoupling(alternating_mask(2, 1), bins=4, hidden=(16,), context_dim=context_dim),
          MAF(2, hidden=(16,), context_dim=context_dim), ReversePermutation(2), RadialFlow(2, context_dim)]
    return Flow(var=["x"], cond_var=list(cond), base=_std(), transforms=ts, name="p")


def test_log_prob_is_the_change_of_variables() -> None:
    flow = _flow2d()
    _randomise(flow)
    x = torch.randn(7, 2)
    u, ld = flow.transform(x)
    manual = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum(-1) + ld
    assert torch.allclose(flow.log_prob({"x": x}), manual, atol=1e-6)
    assert torch.allclose(flow.inverse(x), u)
    assert torch.allclose(flow.from_latent(u), x, atol=1e-5)
    assert str(flow.prob_text) == "p(x)"


def test_density_integrates_to_one_on_a_grid() -> None:
    flow = _flow2d()
    _randomise(flow, 0.2)
    n, lim = 200, 8.0
    g = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    with torch.no_grad():
        mass = flow.log_prob({"x": pts}).exp().sum() * (g[1] - g[0]) ** 2
        inside = (flow.sample(batch_n=4000)["x"].abs() < lim).all(-1).float().mean()
    assert inside > 0.99
    assert abs(mass.item() - 1.0) < 0.02, mass
    # a wider flow puts mass outside the grid: the grid's mass is then the share of samples inside it
    _randomise(flow, 0.3)
    with torch.no_grad():
        mass = flow.log_prob({"x": pts}).exp().sum() * (g[1] - g[0]) ** 2
        inside = (flow.sample(batch_n=4000)["x"].abs() < lim).all(-1).float().mean()
    assert abs(mass.item() - inside.item()) < 0.03, (mass, inside)


def test_samples_have_the_right_shapes_and_score_as_recomputed() -> None:
    flow = _flow2d()
    _randomise(flow)
    s = flow.sample(batch_n=6)
    assert s["x"].shape == (6, 2) and set(s) == {"x"}
    x, lq = flow.sample_with_log_prob(batch_n=6)
    assert torch.allclose(lq, flow.log_prob({"x": x.clone()}), atol=1e-4)
    cond_flow = _flow2d(context_dim=3, cond=("c",))
    c = torch.randn(4, 3)
    out = cond_flow.sample({"c": c}, sample_shape=5)
    assert out["x"].shape == (5, 4, 2)
    assert cond_flow.log_prob(out).shape == (5, 4)


def test_conditional_flow_depends_on_its_condition() -> None:
    flow = _flow2d(context_dim=3, cond=("c",))
    _randomise(flow)
    x = torch.randn(5, 2)
    c = torch.randn(5, 3)
    assert not torch.allclose(flow.log_prob({"x": x, "c": c}), flow.log_prob({"x": x, "c": c + 1}))
    torch.manual_seed(3)
    a = flow.sample({"c": c})["x"]
    torch.manual_seed(3)
    b = flow.sample({"c": c + 1})["x"]
    assert not torch.allclose(a, b)
    with pytest.raises(KeyError, match="needs the variable 'c'"):
        flow.log_prob({"x": x})


def test_replace_var_shares_parameters() -> None:
    flow = _flow2d(context_dim=3, cond=("c",))
    _randomise(flow)
    other = flow.replace_var(x="y", c="d")
    x, c = torch.randn(3, 2), torch.randn(3, 3)
    assert other.prob_text == "p(y|d)" and flow.prob_text == "p(x|c)"
    assert torch.allclose(other.log_prob({"y": x, "d": c}), flow.log_prob({"x": x, "c": c}))
    assert set(map(id, other.parameters())) == set(map(id, flow.parameters()))


def test_detached_log_prob_has_the_value_but_no_parameter_gradient() -> None:
    flow = _flow2d()
    _randomise(flow)
    x = torch.randn(4, 2)
    env = Env({"x": x})
    lp = flow.log_prob_at(env, detach_params=True)
    assert torch.allclose(lp, flow.log_prob({"x": x}))
    assert not lp.requires_grad


def test_ml_training_on_moons_lowers_the_nll() -> None:
    torch.manual_seed(0)
    x = toy_2d("moons", 256, seed=0)
    x = (x - x.mean(0)) / x.std(0)
    flow = Flow(var=["x"], base=_std(), transforms=[
        t for i in range(4) for t in (AffineCoupling(alternating_mask(2, i % 2), hidden=(32,)),)])
    model = ML(flow, optimizer_params={"lr": 1e-2})
    first = model.eval_step({"x": x})
    for _ in range(60):
        model.train_step({"x": x})
    last = model.eval_step({"x": x})
    assert last < first - 0.2, (first, last)


def test_logistic_base_is_normalised_and_samples() -> None:
    p = StandardLogistic(["u"], features_shape=[1])
    g = torch.linspace(-30, 30, 20001)[:, None]
    mass = p.log_prob({"u": g}).exp().sum() * (g[1, 0] - g[0, 0])
    assert abs(mass.item() - 1) < 1e-3
    s = p.sample(batch_n=4000)["u"]
    assert s.shape == (4000, 1) and abs(s.var().item() - torch.pi**2 / 3) < 0.4


@pytest.mark.parametrize("kind", ["planar", "radial", "iaf"])
def test_vae_with_a_flow_posterior_trains(kind: str) -> None:
    torch.manual_seed(0)
    x = torch.bernoulli(torch.rand(3, 12)[torch.randint(0, 3, (64,))])
    q = flow_posterior(12, 2, kind, n_flows=2, hidden=(16,), context_dim=4)
    p = Bernoulli(var=["x"], cond_var=["z"], net=LogitsHead(MLP([2, 16, 12])), name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    model = VAE(q, p, prior, optimizer_params={"lr": 1e-2})
    torch.manual_seed(1)
    first = sum(model.eval_step({"x": x}) for _ in range(10)) / 10
    for _ in range(60):
        model.train_step({"x": x})
    torch.manual_seed(1)
    last = sum(model.eval_step({"x": x}) for _ in range(10)) / 10
    assert last < first, (first, last)
    z, lq = q.sample_with_log_prob({"x": x[:5]})
    assert z.shape == (5, 2) and lq.shape == (5,) and lq.requires_grad  # reparameterised
    if kind == "planar":
        with pytest.raises(NotInvertibleError):
            q.log_prob({"x": x[:5], "z": z.detach().clone()})
    else:  # radial and IAF have an inverse: the cached log q equals the recomputed one
        assert torch.allclose(lq, q.log_prob({"x": x[:5], "z": z.detach().clone()}), atol=1e-4)


def test_flow_prior_in_a_monte_carlo_kl() -> None:
    torch.manual_seed(0)
    prior = Flow(var=["z"], base=_std(), transforms=[MAF(2, hidden=(8,)), IAF(2, hidden=(8,))], name="p_{prior}")
    _randomise(prior)
    q = Normal(var=["z"], cond_var=["x"], net=lambda x: {"loc": x, "scale": torch.ones_like(x)}, name="q")
    loss = (KL(q, prior, sample_shape=64) - E(q, LogProb(q))).mean()
    value = loss({"x": torch.zeros(3, 2)})
    assert torch.isfinite(value)


def _linear_gaussian_flow() -> tuple[Flow, torch.Tensor]:
    """x = W⁻¹ u with u ~ N(0, I), a correlated Gaussian; the flow and the covariance of x."""
    torch.manual_seed(0)
    conv = InvertibleConv1x1(2, seed=0)
    with torch.no_grad():
        conv.lower.fill_(0.8)
    w = conv.weight().detach()
    return Flow(var=["x"], base=_std(), transforms=[conv]), torch.linalg.inv(w.T @ w)


def test_inpainting_finds_the_conditional_mode_of_a_gaussian_flow() -> None:
    # x = W⁻¹ u with u ~ N(0, I) (a linear flow) is Gaussian: the best x₂ given x₁ is the conditional mean
    flow, cov = _linear_gaussian_flow()
    x = torch.tensor([[1.5, 0.0], [-0.7, 0.0]])
    out = inpaint(flow, x, torch.tensor([1.0, 0.0]), steps=300, lr=0.1, bounds=None)
    expected = cov[1, 0] / cov[0, 0] * x[:, 0]
    assert torch.allclose(out[:, 0], x[:, 0]) and torch.allclose(out[:, 1], expected, atol=1e-3), (out, expected)
    assert all(p.requires_grad for p in flow.parameters())


def test_inpainting_by_langevin_sampling_draws_from_the_gaussian_conditional() -> None:
    # the same linear flow: x₂ | x₁ ~ N(Σ₂₁/Σ₁₁ x₁, Σ₂₂ - Σ₂₁²/Σ₁₁); 2,000 chains give its mean and spread
    flow, cov = _linear_gaussian_flow()
    x = torch.tensor([[1.5, 0.0]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    out, acceptance = inpaint_sample(flow, x, torch.tensor([1.0, 0.0]), steps=200, step_size=0.1, bounds=None,
                                     generator=g)
    mean = float(cov[1, 0] / cov[0, 0] * 1.5)
    sd = float((cov[1, 1] - cov[1, 0] ** 2 / cov[0, 0]).sqrt())
    assert torch.equal(out[:, 0], x[:, 0])
    assert abs(float(out[:, 1].mean()) - mean) < 0.1 * sd and abs(float(out[:, 1].std()) / sd - 1) < 0.08
    assert 0.4 < acceptance < 0.8  # tuned towards 0.574 in the first half
    assert all(p.requires_grad for p in flow.parameters()) and flow.training


def test_inpainting_by_sampling_within_bounds_matches_the_truncated_target() -> None:
    # a standard normal flow on [0, 1]² (bounds): the missing coordinate is N(0, 1) truncated to [0, 1]
    flow = Flow(var=["x"], base=_std(), transforms=[])
    x = torch.full((4000, 2), 0.3)
    out, _ = inpaint_sample(flow, x, torch.tensor([1.0, 0.0]), steps=300, step_size=0.5,
                            generator=torch.Generator().manual_seed(1))
    z = torch.distributions.Normal(0.0, 1.0)
    a, b = z.cdf(torch.tensor(0.0)), z.cdf(torch.tensor(1.0))
    truncated_mean = float((z.log_prob(torch.tensor(0.0)).exp() - z.log_prob(torch.tensor(1.0)).exp()) / (b - a))
    assert ((out[:, 1] > 0) & (out[:, 1] < 1)).all()
    assert abs(float(out[:, 1].mean()) - truncated_mean) < 0.02, (float(out[:, 1].mean()), truncated_mean)


def test_inpainting_through_dequantisation_stays_in_bounds_and_raises_the_likelihood() -> None:
    torch.manual_seed(0)
    flow = Flow(var=["x"], base=_std("u", 4), transforms=[Dequantize(256, "midpoint"), Logit(), MAF(4, hidden=(8,))])
    _randomise(flow)
    x = torch.rand(3, 4)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0])
    out = inpaint(flow, x, mask, steps=30, lr=0.1)
    assert torch.equal(out[:, :2], x[:, :2]) and ((out >= 0) & (out <= 1)).all()
    flow.eval()
    start = x.clone()
    start[:, 2:] = 0.5
    assert (flow.log_prob({"x": out}) > flow.log_prob({"x": start})).all()


@pytest.mark.parametrize("estimator", ["plain", "dreg"])
def test_importance_weighted_objective_with_a_flow_posterior(estimator: str) -> None:
    torch.manual_seed(0)
    q = flow_posterior(6, 2, "iaf", n_flows=2, hidden=(8,), context_dim=4)
    p = Bernoulli(var=["x"], cond_var=["z"], net=LogitsHead(MLP([2, 8, 6])), name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    value = IWELBO(p * prior, q, k=4, estimator=estimator)({"x": x})
    assert value.shape == (5,) and torch.isfinite(value).all()
    value.sum().backward()
    assert all(t.grad is not None for t in q.transform.parameters())
