"""Point masses, data distributions, Gaussian mixtures, products and mixtures of experts, and the
wrapper of any ``torch.distributions`` object, against scipy and formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions as td
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special as sps
from scipy import stats
from torch import nn

from deepgm.distributions import (
    Deterministic,
    Empirical,
    FromTorch,
    MixtureOfExperts,
    MixtureOfNormal,
    Normal,
    ProductOfNormal,
)
from deepgm.errors import DeepGMError, MissingVariableError, ParameterError

F64 = torch.float64
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(2468)


def check(actual: torch.Tensor, expected: np.ndarray | torch.Tensor | float, rtol: float = 1e-7,
          atol: float = 1e-9) -> None:
    if torch.is_tensor(expected):
        expected = expected.detach().to(F64).numpy()
    expected = np.asarray(expected, dtype=np.float64)
    got = actual.detach().to(F64).numpy()
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _array(data: st.DataObject, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shape, elements=_floats(lo, hi)))


class LocScale(nn.Module):
    """``x -> {loc, scale}``; its layers give the test's own reference values."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.loc = nn.Linear(d_in, d_out)
        self.log_scale = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.loc(x), "scale": self.log_scale(x).exp()}

    def reference(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            return self.loc(x).numpy(), self.log_scale(x).exp().numpy()


class LocOnly(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": torch.tanh(self.fc(x))}


# -- Deterministic -------------------------------------------------------------------------------------
def test_deterministic_sample_returns_loc() -> None:
    net = LocOnly(2, 3).double()
    d = Deterministic(var=["h"], cond_var=["x"], net=net, name="f")
    x = torch.randn(4, 2, dtype=F64)
    h = d.sample({"x": x})["h"]
    torch.testing.assert_close(h, torch.tanh(net.fc(x)), rtol=0, atol=0)
    assert h.requires_grad  # a deterministic function of the network: differentiable
    torch.testing.assert_close(d.mean({"x": x}), torch.tanh(net.fc(x)), rtol=0, atol=0)

    const = Deterministic(var=["h"], loc=torch.tensor([1.0, -2.0]))
    torch.testing.assert_close(const.sample()["h"], torch.tensor([1.0, -2.0]), rtol=0, atol=0)
    torch.testing.assert_close(const.sample(batch_n=3)["h"], torch.tensor([[1.0, -2.0]] * 3), rtol=0, atol=0)


def test_deterministic_has_no_density() -> None:
    d = Deterministic(var=["h"], cond_var=["x"], net=LocOnly(2, 3))
    x = torch.randn(4, 2)
    with pytest.raises(DeepGMError, match="no log-density"):
        d.log_prob({"x": x, "h": torch.zeros(4, 3)})


def test_joint_with_a_deterministic_factor_sums_only_the_others() -> None:
    net = LocOnly(2, 3).double()
    f = Deterministic(var=["h"], cond_var=["x"], net=net, name="f")
    p = Normal(var=["y"], cond_var=["h"], net=LocScale(3, 3).double(), name="p")
    joint = p * f
    assert joint.cond_var == ["x"]
    x = torch.randn(5, 2, dtype=F64)
    out = joint.sample({"x": x})
    torch.testing.assert_close(out["h"], torch.tanh(net.fc(x)), rtol=0, atol=0)
    y = torch.randn(5, 3, dtype=F64)
    h = torch.tanh(net.fc(x)).detach()
    loc, scale = p.net.reference(h)
    check(joint.log_prob({"x": x, "h": h, "y": y}), stats.norm.logpdf(y.numpy(), loc, scale).sum(-1))
    # a joint with no factor that has a density
    with pytest.raises(DeepGMError):
        (f * Deterministic(var=["x"], loc=torch.zeros(2))).log_prob({"x": x, "h": h})


# -- Empirical -----------------------------------------------------------------------------------------
def test_empirical_with_data_draws_rows() -> None:
    data = torch.arange(20.0).reshape(10, 2)
    p = Empirical(var=["x"], data=data)
    x = p.sample(batch_n=7)["x"]
    assert x.shape == (7, 2)
    x = p.sample(sample_shape=(3,), batch_n=400)["x"]
    assert x.shape == (3, 400, 2)
    rows = {tuple(r) for r in data.tolist()}
    drawn = [tuple(r) for r in x.reshape(-1, 2).tolist()]
    assert set(drawn) == rows  # only rows of the data, and all of them in 1200 draws
    counts = np.array([drawn.count(r) for r in sorted(rows)])
    assert counts.min() > 60 and counts.max() < 180  # about uniform: 120 each
    with pytest.raises(NotImplementedError):
        p.log_prob({"x": x})


def test_empirical_without_data_returns_the_inputs() -> None:
    p = Empirical(var=["x"])
    assert p.prob_text == "p_{data}(x)"
    x = torch.randn(4, 3)
    out = p.sample({"x": x})
    assert out["x"] is x
    with pytest.raises(MissingVariableError, match="'x'"):
        p.sample({"y": x})
    # in a joint with an encoder, only the encoder has a density
    net = LocScale(3, 2).double()
    q = Normal(var=["z"], cond_var=["x"], net=net, name="q")
    joint = q * p
    assert joint.cond_var == []
    xd = x.double()
    out = joint.sample({"x": xd})
    assert out["x"] is xd and out["z"].shape == (4, 2)
    z = torch.randn(4, 2, dtype=F64)
    loc, scale = net.reference(xd)
    check(joint.log_prob({"x": xd, "z": z}), stats.norm.logpdf(z.numpy(), loc, scale).sum(-1))
    assert Empirical(var=["x"]).replace_var(x="x_u").prob_text == "p_{data}(x_u)"


def test_joint_with_empirical_keeps_the_sample_shape() -> None:
    """``(q * p_data).sample(x, sample_shape=(S,))`` draws S z's per data point, like ``q`` alone."""
    q = Normal(var=["z"], cond_var=["x"], net=LocScale(3, 2), name="q")
    x = torch.randn(4, 3)
    assert q.sample({"x": x}, sample_shape=(2,))["z"].shape == (2, 4, 2)
    out = (q * Empirical(var=["x"])).sample({"x": x}, sample_shape=(2,))
    assert out["x"] is x and out["z"].shape == (2, 4, 2)
    # with data, the data draw carries the sample dimension and z follows it
    out = (q * Empirical(var=["x"], data=torch.randn(10, 3))).sample(sample_shape=(2,), batch_n=4)
    assert out["x"].shape == (2, 4, 3) and out["z"].shape == (2, 4, 2)


# -- MixtureOfNormal -----------------------------------------------------------------------------------
@SETTINGS
@given(k=st.integers(1, 4), d=st.integers(1, 3), n=st.integers(1, 5), data=st.data())
def test_mixture_of_normal_log_prob(k: int, d: int, n: int, data: st.DataObject) -> None:
    loc = _array(data, (k, d), -3, 3)
    scale = _array(data, (k, d), 0.2, 3)
    logits = _array(data, (k,), -3, 3)
    x = _array(data, (n, d), -6, 6)
    m = MixtureOfNormal(var=["x"], loc=torch.tensor(loc), scale=torch.tensor(scale),
                        logits=torch.tensor(logits))
    # the parameters are held at the default dtype: the reference uses the same rounded values
    loc, scale, logits = (np.float64(np.float32(a)) for a in (loc, scale, logits))
    comp = np.log(sps.softmax(logits)) + stats.norm.logpdf(x[:, None, :], loc, scale).sum(-1)  # (N, K)
    lp = m.log_prob({"x": torch.tensor(x)})
    check(lp, sps.logsumexp(comp, axis=-1), rtol=1e-5, atol=1e-5)
    ref = td.MixtureSameFamily(td.Categorical(logits=torch.tensor(logits)),
                               td.Independent(td.Normal(torch.tensor(loc), torch.tensor(scale)), 1))
    check(lp, ref.log_prob(torch.tensor(x)), rtol=1e-5, atol=1e-5)
    post = m.posterior({"x": torch.tensor(x)})
    check(post.sum(-1), np.ones(n), rtol=1e-5)
    check(post, sps.softmax(comp, axis=-1), rtol=1e-4, atol=1e-6)


def test_mixture_of_normal_batch_shapes_and_probs() -> None:
    loc = torch.tensor([[0.0, 0.0], [3.0, -1.0], [-2.0, 4.0]])
    probs = torch.tensor([0.2, 0.5, 0.3])
    a = MixtureOfNormal(var=["z"], loc=loc, scale=0.5, probs=probs)
    b = MixtureOfNormal(var=["z"], loc=loc, scale=torch.full((3, 2), 0.5), logits=probs.log() + 7.0)
    z = torch.randn(4, 6, 2)
    lp = a.log_prob({"z": z})
    assert lp.shape == (4, 6)
    torch.testing.assert_close(lp, b.log_prob({"z": z}))
    assert a.posterior({"z": z}).shape == (4, 6, 3)
    assert a.n_components == 3
    with pytest.raises(ParameterError):
        MixtureOfNormal(var=["z"], loc=loc, scale=-1.0)
    with pytest.raises(ParameterError):
        MixtureOfNormal(var=["z"], loc=loc, probs=torch.tensor([0.5, 0.6, 0.1]))


def test_mixture_of_normal_samples() -> None:
    loc = torch.tensor([[0.0, 0.0], [6.0, -4.0], [-5.0, 8.0]])
    probs = torch.tensor([0.2, 0.5, 0.3])
    m = MixtureOfNormal(var=["z"], loc=loc, scale=0.5, probs=probs)
    assert m.sample(batch_n=7)["z"].shape == (7, 2)
    assert m.sample(sample_shape=(3,), batch_n=7)["z"].shape == (3, 7, 2)
    assert m.sample()["z"].shape == (2,)
    z = m.sample(batch_n=20000)["z"]
    torch.testing.assert_close(z.mean(0), probs @ loc, atol=0.1, rtol=0)
    nearest = torch.cdist(z, loc).argmin(-1)  # the components are well apart
    torch.testing.assert_close(torch.bincount(nearest, minlength=3) / 20000.0, probs, atol=0.02, rtol=0)


def test_mixture_of_normal_learnable() -> None:
    loc = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    fixed = MixtureOfNormal(var=["z"], loc=loc)
    assert list(fixed.parameters()) == []
    m = MixtureOfNormal(var=["z"], loc=loc, learnable=True)
    params = dict(m.named_parameters())
    assert set(params) == {"loc", "log_scale", "logits"}
    assert all(isinstance(p, nn.Parameter) for p in params.values())
    m.log_prob({"z": torch.randn(8, 2)}).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    # initial values: the given loc, unit scales, uniform weights
    torch.testing.assert_close(params["loc"].detach(), loc)
    torch.testing.assert_close(params["log_scale"].detach(), torch.zeros(2, 2))
    z = torch.randn(5, 2)
    expected = sps.logsumexp(np.log(0.5) + stats.norm.logpdf(z.numpy()[:, None], loc.numpy()).sum(-1), -1)
    check(m.log_prob({"z": z}), expected, rtol=1e-5)


# -- ProductOfNormal -----------------------------------------------------------------------------------
def _experts() -> tuple[Normal, Normal, LocScale, LocScale]:
    nx, ny = LocScale(3, 2).double(), LocScale(4, 2).double()
    qx = Normal(var=["z"], cond_var=["x"], net=nx, name="q_x")
    qy = Normal(var=["z"], cond_var=["y"], net=ny, name="q_y")
    return qx, qy, nx, ny


def _poe_reference(experts: list[tuple[np.ndarray, np.ndarray]], prior: bool) -> tuple[np.ndarray, ...]:
    """Precisions add; the mean is the precision-weighted mean of the experts' means."""
    precision = sum(1 / s**2 for _, s in experts) + (1.0 if prior else 0.0)
    loc = sum(m / s**2 for m, s in experts) / precision  # the N(0, 1) expert adds 0 to the numerator
    return loc, 1 / np.sqrt(precision)


def test_product_of_normal_precision_weighted() -> None:
    qx, qy, nx, ny = _experts()
    poe = ProductOfNormal([qx, qy], name="q")
    assert poe.cond_var == ["x", "y"] and poe.var == ["z"]
    x, y = torch.randn(5, 3, dtype=F64), torch.randn(5, 4, dtype=F64)
    z = torch.randn(3, 5, 2, dtype=F64)
    loc, scale = _poe_reference([nx.reference(x), ny.reference(y)], prior=True)
    check(poe.mean({"x": x, "y": y}), loc)
    check(poe.variance({"x": x, "y": y}), scale**2)
    check(poe.log_prob({"x": x, "y": y, "z": z}), stats.norm.logpdf(z.numpy(), loc, scale).sum(-1))
    assert poe.sample({"x": x, "y": y}, sample_shape=(3,))["z"].shape == (3, 5, 2)

    no_prior = ProductOfNormal([qx, qy], prior_expert=False)
    loc, scale = _poe_reference([nx.reference(x), ny.reference(y)], prior=False)
    check(no_prior.mean({"x": x, "y": y}), loc)
    check(no_prior.variance({"x": x, "y": y}), scale**2)
    # a hand-made case: N(1, 1) and N(3, 1/4) with N(0, 1) give precision 6 and mean (1 + 12) / 6
    a = Normal(var=["z"], cond_var=["a"], loc="a", scale=1.0, event_ndim=1)
    b = Normal(var=["z"], cond_var=["b"], loc="b", scale=0.5, event_ndim=1)
    hand = ProductOfNormal([a, b])
    ones = torch.ones(1, 1)
    check(hand.mean({"a": ones, "b": 3 * ones}), np.array([[13 / 6]]), rtol=1e-6)
    check(hand.variance({"a": ones, "b": 3 * ones}), np.array([[1 / 6]]), rtol=1e-6)


def test_product_of_normal_skips_experts_whose_input_is_missing() -> None:
    qx, qy, nx, ny = _experts()
    poe = ProductOfNormal([qx, qy], name="q")
    x, z = torch.randn(5, 3, dtype=F64), torch.randn(5, 2, dtype=F64)
    loc, scale = _poe_reference([nx.reference(x)], prior=True)
    check(poe.mean({"x": x}), loc)
    check(poe.log_prob({"x": x, "z": z}), stats.norm.logpdf(z.numpy(), loc, scale).sum(-1))
    assert poe.sample({"x": x})["z"].shape == (5, 2)
    with pytest.raises(DeepGMError):
        ProductOfNormal([qx, qy], prior_expert=False).sample({})


def test_product_of_normal_with_the_prior_expert_only() -> None:
    qx, qy, _, _ = _experts()
    poe = ProductOfNormal([qx, qy], name="q", features_shape=[2])
    check(poe.mean({}), np.zeros(2))
    check(poe.variance({}), np.ones(2))
    z = torch.randn(6, 2)
    check(poe.log_prob({"z": z}), stats.norm.logpdf(z.numpy()).sum(-1), rtol=1e-6)
    assert poe.sample({})["z"].shape == (2,)
    assert poe.sample({}, batch_n=4)["z"].shape == (4, 2)
    assert poe.sample({}, sample_shape=(3,), batch_n=4)["z"].shape == (3, 4, 2)


# -- MixtureOfExperts ----------------------------------------------------------------------------------
def test_mixture_of_experts_log_prob() -> None:
    qx, qy, nx, ny = _experts()
    moe = MixtureOfExperts([qx, qy], name="q")
    assert moe.cond_var == ["x", "y"]
    x, y = torch.randn(5, 3, dtype=F64), torch.randn(5, 4, dtype=F64)
    z = torch.randn(3, 5, 2, dtype=F64)
    lx = stats.norm.logpdf(z.numpy(), *nx.reference(x)).sum(-1)
    ly = stats.norm.logpdf(z.numpy(), *ny.reference(y)).sum(-1)
    check(moe.log_prob({"x": x, "y": y, "z": z}), np.logaddexp(lx, ly) - math.log(2))
    check(moe.log_prob({"x": x, "z": z}), lx)  # one expert present: M = 1
    with pytest.raises(DeepGMError):
        moe.log_prob({"z": z})


def test_mixture_of_experts_samples_come_from_one_expert() -> None:
    qa = Normal(var=["z"], cond_var=["a"], loc="a", scale=1e-3, event_ndim=1)
    qb = Normal(var=["z"], cond_var=["b"], loc="b", scale=1e-3, event_ndim=1)
    moe = MixtureOfExperts([qa, qb])
    a = torch.full((200, 3), 5.0)
    b = torch.full((200, 3), -5.0)
    z = moe.sample({"a": a, "b": b}, sample_shape=(2,))["z"]
    assert z.shape == (2, 200, 3)
    from_a = (z - 5.0).abs().amax(-1) < 0.05
    from_b = (z + 5.0).abs().amax(-1) < 0.05
    assert bool((from_a ^ from_b).all())  # every point, all its features, from exactly one expert
    assert 0.35 < float(from_a.double().mean()) < 0.65  # the expert is picked uniformly
    z = moe.sample({"a": a})["z"]  # only one expert present
    torch.testing.assert_close(z, a, atol=0.05, rtol=0)


def test_mixture_of_experts_reparameterised() -> None:
    qx, qy, nx, ny = _experts()
    moe = MixtureOfExperts([qx, qy])
    z = moe.sample({"x": torch.randn(5, 3, dtype=F64), "y": torch.randn(5, 4, dtype=F64)})["z"]
    z.sum().backward()
    assert nx.loc.weight.grad is not None and ny.loc.weight.grad is not None


def test_experts_must_be_normal_over_one_variable() -> None:
    qx, _, _, _ = _experts()
    other = Normal(var=["w"], cond_var=["y"], net=LocScale(4, 2))
    with pytest.raises(ValueError, match="w"):
        ProductOfNormal([qx, other])
    with pytest.raises(ValueError, match="w"):
        MixtureOfExperts([qx, other])
    with pytest.raises(ValueError):
        ProductOfNormal([])


# -- FromTorch -----------------------------------------------------------------------------------------
def test_from_torch_student_t_sums_event_dims() -> None:
    loc, scale = torch.tensor([0.5, -1.0, 2.0], dtype=F64), torch.tensor([1.0, 0.5, 2.0], dtype=F64)
    p = FromTorch(["x"], fn=lambda: td.StudentT(3.0, loc, scale), event_ndim=1)
    x = torch.randn(4, 5, 3, dtype=F64)
    ref = stats.t(3.0, loc.numpy(), scale.numpy()).logpdf(x.numpy())
    check(p.log_prob({"x": x}), ref.sum(-1))
    elementwise = FromTorch(["x"], fn=lambda: td.StudentT(3.0, loc, scale))
    check(elementwise.log_prob({"x": x}), ref)
    assert p.sample(batch_n=6)["x"].shape == (6, 3)
    assert p.sample(sample_shape=(2,), batch_n=6)["x"].shape == (2, 6, 3)


def test_from_torch_conditional() -> None:
    p = FromTorch(["x"], ["c"], fn=lambda c: td.Laplace(c, torch.ones_like(c)), event_ndim=1, name="p")
    assert p.prob_text == "p(x|c)"
    c, x = torch.randn(4, 2, dtype=F64), torch.randn(3, 4, 2, dtype=F64)
    check(p.log_prob({"c": c, "x": x}), stats.laplace.logpdf(x.numpy(), c.numpy()).sum(-1))
    assert p.sample({"c": c}, sample_shape=(3,))["x"].shape == (3, 4, 2)
    with pytest.raises(MissingVariableError, match="'c'"):
        p.sample({})
    pu = p.replace_var(c="d")
    check(pu.log_prob({"d": c, "x": x}), stats.laplace.logpdf(x.numpy(), c.numpy()).sum(-1))
