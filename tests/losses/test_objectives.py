"""Expectations, divergences, MMD, REINFORCE, IterativeLoss and the algebra of expressions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepgm.distributions import (
    Bernoulli,
    Beta,
    Categorical,
    Deterministic,
    Gamma,
    Laplace,
    Normal,
    RelaxedBernoulli,
)
from deepgm.errors import MissingVariableError, ObjectiveError
from deepgm.losses import (
    KL,
    MMD,
    REINFORCE,
    CrossEntropy,
    E,
    Entropy,
    IterativeLoss,
    LogProb,
    Parameter,
    maximum,
    minimum,
    mmd2_unbiased,
)


class Affine(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, s = self.lin(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 0.1}


def _q() -> Normal:
    return Normal(var=["z"], cond_var=["x"], net=Affine(3, 2), name="q")


@pytest.mark.parametrize(
    "make",
    [
        lambda: (Normal(var=["z"], loc=torch.randn(4), scale=torch.rand(4) + 0.5),
                 Normal(var=["z"], loc=torch.randn(4), scale=torch.rand(4) + 0.5)),
        lambda: (Laplace(var=["z"], loc=torch.randn(4), scale=torch.rand(4) + 0.5),
                 Laplace(var=["z"], loc=torch.randn(4), scale=torch.rand(4) + 0.5)),
        lambda: (Beta(var=["z"], concentration1=torch.rand(4) + 1, concentration0=torch.rand(4) + 1),
                 Beta(var=["z"], concentration1=torch.rand(4) + 1, concentration0=torch.rand(4) + 1)),
        lambda: (Gamma(var=["z"], concentration=torch.rand(4) + 2, rate=torch.rand(4) + 1),
                 Gamma(var=["z"], concentration=torch.rand(4) + 2, rate=torch.rand(4) + 1)),
        lambda: (Categorical(var=["z"], probs=torch.softmax(torch.randn(5), 0)),
                 Categorical(var=["z"], probs=torch.softmax(torch.randn(5), 0))),
        lambda: (Bernoulli(var=["z"], probs=torch.rand(4) * 0.8 + 0.1),
                 Bernoulli(var=["z"], probs=torch.rand(4) * 0.8 + 0.1)),
    ],
)
def test_analytic_kl_matches_monte_carlo(make) -> None:
    p, q = make()
    exact = KL(p, q, analytic=True)({})
    mc = KL(p, q, analytic=False, sample_shape=200_000)({})
    assert exact.shape == mc.shape == ()
    assert torch.allclose(exact, mc, atol=0.02, rtol=0.02)


def test_conditional_kl_to_standard_prior_matches_torch() -> None:
    q = _q()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    x = torch.randn(7, 3)
    got = KL(q, prior)({"x": x})
    d = q.dist({"x": x})
    ref = torch.distributions.kl_divergence(d, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert got.shape == (7,)
    assert torch.allclose(got, ref, atol=1e-6)
    other = Normal(var=["z"], loc=0.5, scale=2.0, features_shape=[2])
    ref2 = torch.distributions.kl_divergence(d, torch.distributions.Normal(0.5, 2.0)).sum(-1)
    assert torch.allclose(KL(q, other)({"x": x}), ref2, atol=1e-6)


def test_kl_requires_same_variables_and_analytic_availability() -> None:
    with pytest.raises(ObjectiveError, match="same variables"):
        KL(_q(), Normal(var=["w"], loc=0.0, scale=1.0))
    with pytest.raises(ObjectiveError, match="no analytic form"):
        KL(RelaxedBernoulli(var=["z"], probs=0.5), Beta(var=["z"], concentration1=1.0, concentration0=1.0),
           analytic=True)


def test_entropy_and_cross_entropy() -> None:
    p = Normal(var=["z"], loc=torch.randn(3), scale=torch.rand(3) + 0.5)
    q = Normal(var=["z"], loc=torch.randn(3), scale=torch.rand(3) + 0.5)
    h = Entropy(p)({})
    assert torch.allclose(h, p.dist().entropy().sum())
    assert torch.allclose(Entropy(p, analytic=False, sample_shape=100_000)({}), h, atol=0.03)
    ce = CrossEntropy(p, q)({})
    assert torch.allclose(ce, h + KL(p, q)({}), atol=1e-6)
    assert torch.allclose(CrossEntropy(p, q, analytic=False, sample_shape=100_000)({}), ce, atol=0.05)


def test_expectation_vectorised_shapes_and_average() -> None:
    q = _q()
    p = Normal(var=["x"], cond_var=["z"], net=Affine(2, 3), name="p")
    x = torch.randn(5, 3)
    one = E(q, LogProb(p))({"x": x})
    many = E(q, LogProb(p), sample_shape=10)({"x": x})
    assert one.shape == many.shape == (5,)
    # the K draws are one batch through the decoder: equals the mean of a manual loop with the same noise
    torch.manual_seed(4)
    got = E(q, LogProb(p), sample_shape=6)({"x": x})
    torch.manual_seed(4)
    params = q.params({"x": x})
    z = params["loc"] + torch.randn(6, 5, 2) * params["scale"]
    manual = torch.stack([p.log_prob({"x": x, "z": z[i]}) for i in range(6)]).mean(0)
    assert torch.allclose(got, manual, atol=1e-5)


def test_sample_dims_are_flattened_for_networks_that_need_a_flat_batch() -> None:
    class Flat(nn.Module):
        def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
            assert z.dim() == 2, "the network must see (N, D)"
            return {"logits": z.repeat(1, 2)[:, :3]}

    q = _q()
    p = Bernoulli(var=["x"], cond_var=["z"], net=Flat(), name="p")
    x = torch.rand(4, 3)
    assert E(q, LogProb(p), sample_shape=(3, 2))({"x": x}).shape == (4,)


def test_sharing_rule_same_draw_within_one_evaluation() -> None:
    q = _q()
    p = Normal(var=["x"], cond_var=["z"], net=Affine(2, 3), name="p")
    x = torch.randn(6, 3)
    f = LogProb(p)
    assert torch.equal((E(q, f) - E(q, f))({"x": x}), torch.zeros(6))
    assert torch.allclose((E(q, f) - E(q, f))({"x": x}), E(q, f - f)({"x": x}))
    indep = (E(q, f, independent=True) - E(q, f))({"x": x})
    assert float(indep.detach().abs().sum()) > 0
    # two evaluations never share: fresh draws every call
    assert not torch.equal(E(q, f)({"x": x}), E(q, f)({"x": x}))


def test_same_tensor_twice_gives_fresh_results_and_gradients() -> None:
    q = _q()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    x = torch.randn(4, 3)
    loss = KL(q, prior).mean()
    a = loss({"x": x})
    a.backward()
    with torch.no_grad():
        q.net.lin.weight.mul_(2.0)
    b = loss({"x": x})
    b.backward()  # no "backward through the graph a second time"
    assert not torch.allclose(a, b)


def test_parameter_and_arithmetic() -> None:
    q = _q()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    x = torch.randn(4, 3)
    kl = KL(q, prior)
    beta = Parameter("beta")
    loss = (beta * kl).mean()
    assert torch.allclose(loss({"x": x, "beta": 0.5}), 0.5 * kl({"x": x}).mean())
    assert torch.allclose(loss.eval({"x": x}, beta=2.0), 2 * kl({"x": x}).mean())
    v = kl({"x": x})
    assert torch.allclose((2 - kl / 4 + 1)({"x": x}), 3 - v / 4)
    assert torch.allclose((-kl)({"x": x}), -v)
    assert torch.allclose(abs(kl - 1)({"x": x}), (v - 1).abs())
    assert torch.allclose(minimum(kl, 0.1)({"x": x}), v.clamp(max=0.1))
    assert torch.allclose(maximum(kl, 0.1)({"x": x}), v.clamp(min=0.1))
    assert torch.allclose(kl.sum()({"x": x}), v.sum())
    assert not kl.detach()({"x": x}).requires_grad
    with pytest.raises(MissingVariableError, match="beta"):
        loss({"x": x})
    assert loss.input_var == ["beta", "x"] or set(loss.input_var) == {"beta", "x"}


def test_missing_input_names_variable_and_distribution() -> None:
    q = _q()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    with pytest.raises(MissingVariableError, match=r"q\(z\|x\) needs the variable 'x'"):
        KL(q, prior)({"y": torch.zeros(1, 3)})
    with pytest.raises(ObjectiveError, match="did you mean LogProb"):
        E(q, prior)  # a distribution where an expression belongs


def test_latex_of_standard_objectives() -> None:
    q = _q()
    p = Bernoulli(var=["x"], cond_var=["z"], net=nn.Identity(), name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="p_{prior}")
    vae = (KL(q, prior) - E(q, LogProb(p))).mean()
    assert str(vae) == "mean(D_KL[q(z|x)||p_{prior}(z)] - E_{q(z|x)}[log p(x|z)])"
    assert vae.to_latex() == (
        r"\operatorname{mean}\left(D_{\mathrm{KL}}\left[q(z|x) \,\middle\|\, p_{prior}(z)\right] - "
        r"\mathbb{E}_{q(z|x)}\left[\log p(x|z)\right]\right)"
    )
    assert vae._repr_latex_() == f"${vae.to_latex()}$"
    beta_vae = (Parameter("beta") * KL(q, prior) - E(q, LogProb(p))).mean()
    assert beta_vae.to_latex().startswith(r"\operatorname{mean}\left(\beta \cdot D_{\mathrm{KL}}")
    kl = KL(q, prior)
    assert str(kl - (kl + 1)) == "D_KL[q(z|x)||p_{prior}(z)] - (D_KL[q(z|x)||p_{prior}(z)] + 1)"
    assert str(-(kl - 1) * 2) == "-(D_KL[q(z|x)||p_{prior}(z)] - 1) * 2"


def test_mmd_of_a_distribution_with_itself_is_zero_and_grows_with_shift() -> None:
    x = torch.randn(256, 2)
    y = torch.randn(256, 2)
    base = float(mmd2_unbiased(x, y))
    assert abs(base) < 0.01
    shifted = [float(mmd2_unbiased(x, y + s)) for s in (0.5, 1.0, 2.0)]
    assert shifted[0] > 0.02 and shifted[0] < shifted[1] < shifted[2]
    for kernel in ("gaussian", "imq"):
        p = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
        q = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="q")
        vals = torch.stack([MMD(p, q, kernel=kernel, batch_n=256)({}) for _ in range(20)])
        assert abs(float(vals.mean())) < 0.005
        far = Normal(var=["z"], loc=2.0, scale=1.0, features_shape=[2], name="q")
        assert float(MMD(p, far, kernel=kernel, batch_n=256)({})) > 0.05


def test_mmd_between_aggregate_posterior_and_prior_uses_batch_size() -> None:
    q = _q()
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    v = MMD(q, prior)({"x": torch.randn(32, 3)})
    assert v.shape == () and v.requires_grad


def test_reinforce_gradient_is_unbiased() -> None:
    logits = torch.zeros(3, requires_grad=True)
    target = torch.tensor([1.0, 2.0, 3.0])

    class Net(nn.Module):
        def forward(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": logits.expand(c.shape[0], 3)}

    q = Categorical(var=["k"], cond_var=["c"], net=Net(), name="q")
    f = Deterministic(var=["r"], cond_var=["k"], net=_Reward(target), name="f")
    expr = REINFORCE(q, E(f, _Value("r")), baseline="ema").mean()
    grads = []
    for _ in range(400):
        logits.grad = None
        expr({"c": torch.zeros(64, 1)}).backward()
        grads.append(logits.grad.clone())
    est = torch.stack(grads).mean(0)
    probs = torch.softmax(logits.detach(), 0)
    exact = probs * (target - (probs * target).sum())  # d/dlogits of Σ softmax(l)·t
    assert torch.allclose(est, exact, atol=0.03)


class _Reward(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target

    def forward(self, k: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": (k * self.target).sum(-1)}


class _Value(Parameter):
    """Reads a drawn variable's value as an expression (for the test)."""


def test_iterative_loss_scans_and_carries_state() -> None:
    # h_t = h_{t-1} + x_t, deterministic; the step objective is h_new; total = Σ_t cumsum(x)_t
    class Step(nn.Module):
        def forward(self, h: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loc": h + x}

    step = Deterministic(var=["h_new"], cond_var=["h", "x"], net=Step(), name="f")
    loss = IterativeLoss(E(step, _Value("h_new").sum()), series_var=["x"], update_value={"h_new": "h"})
    xs = torch.randn(5, 3, 2)
    got = loss({"x": xs, "h": torch.zeros(3, 2)})
    assert torch.allclose(got, xs.cumsum(0).sum(), atol=1e-5)
    assert "sum_(t=1..T)" in str(loss)
    fixed = IterativeLoss(E(step, _Value("h_new").sum()), max_iter=2, series_var=["x"],
                          update_value={"h_new": "h"})
    assert torch.allclose(fixed({"x": xs, "h": torch.zeros(3, 2)}), xs[:2].cumsum(0).sum(), atol=1e-5)


def test_e_over_sample_shape_with_log_weights_matches_formula() -> None:
    q = Normal(var=["z"], loc=1.0, scale=2.0, features_shape=[1], name="q")
    val = E(q, LogProb(q), sample_shape=200_000)({})
    assert abs(float(val) + (0.5 * math.log(2 * math.pi * math.e * 4))) < 0.01
