"""The parametric families against independent references: ``scipy.stats``, ``torch.distributions`` and
formulas written out by hand (the relaxed densities), on random parameters drawn with hypothesis.

Also: shapes with sample and batch dimensions, sampling (shapes, gradients, hard straight-through
draws, Monte-Carlo means), the absence of stale caches, and the errors raised on bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    Family,
    Gamma,
    Laplace,
    Multinomial,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
)
from deepgm.errors import MissingVariableError, ParameterError, ShapeError

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
    torch.manual_seed(1234)


# -- helpers -------------------------------------------------------------------------------------------
def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _array(data: st.DataObject, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shape, elements=_floats(lo, hi)))


def _binary(data: st.DataObject, shape: tuple[int, ...]) -> np.ndarray:
    return data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))


def _simplex(data: st.DataObject, shape: tuple[int, ...], lo: float = 0.05) -> np.ndarray:
    w = _array(data, shape, lo, 1.0)
    return w / w.sum(-1, keepdims=True)


def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=F64)


def check(actual: torch.Tensor, expected: Any, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """``actual`` (a tensor from deepgm) equals ``expected`` (a reference) in shape and value."""
    if torch.is_tensor(expected):
        expected = expected.detach().to(F64).numpy()
    expected = np.asarray(expected, dtype=np.float64)
    got = actual.detach().to(F64).numpy()
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def _onehot(idx: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[idx]


def _binary_concrete_logpdf(y: np.ndarray, probs: np.ndarray, temp: float) -> np.ndarray:
    """log of  λ α y^(-λ-1) (1-y)^(-λ-1) / (α y^(-λ) + (1-y)^(-λ))²  with  α = p / (1 - p)."""
    log_a = np.log(probs) - np.log1p(-probs)
    ly, l1y = np.log(y), np.log1p(-y)
    return (np.log(temp) + log_a - (temp + 1) * (ly + l1y)
            - 2 * np.logaddexp(log_a - temp * ly, -temp * l1y))


def _concrete_logpdf(y: np.ndarray, probs: np.ndarray, temp: float) -> np.ndarray:
    """log of  (K-1)! λ^(K-1) Π_k [π_k y_k^(-λ-1)] / (Σ_k π_k y_k^(-λ))^K  (Maddison et al., 2017)."""
    k = y.shape[-1]
    ly, la = np.log(y), np.log(probs)
    return (sps.gammaln(k) + (k - 1) * np.log(temp) + (la - (temp + 1) * ly).sum(-1)
            - k * sps.logsumexp(la - temp * ly, axis=-1))


# -- every family against scipy.stats and torch.distributions ------------------------------------------
@dataclass
class Case:
    dist: Family
    value: np.ndarray  # (S, B, ...) value of the variable "x"
    log_prob: np.ndarray  # (S, B), the independent reference (scipy or a formula)
    torch_dist: td.Distribution  # the torch reference, batch shape (B,)
    mean: np.ndarray | None = None  # (B, ...), from scipy; None where the family has none
    variance: np.ndarray | None = None
    entropy: np.ndarray | None = None  # (B,)
    given_value: Any = None  # what is passed as "x" when it is not the value itself (class indices)


def _normal(data: st.DataObject, s: int, b: int, d: int) -> Case:
    loc, scale = _array(data, (b, d), -5, 5), _array(data, (b, d), 0.05, 5)
    x = _array(data, (s, b, d), -10, 10)
    ref = stats.norm(loc, scale)
    return Case(Normal(var=["x"], loc=_t(loc), scale=_t(scale), event_ndim=1), x, ref.logpdf(x).sum(-1),
                td.Independent(td.Normal(_t(loc), _t(scale)), 1), ref.mean(), ref.var(),
                ref.entropy().sum(-1))


def _bernoulli_probs(data: st.DataObject, s: int, b: int, d: int) -> Case:
    p, x = _array(data, (b, d), 0.01, 0.99), _binary(data, (s, b, d))
    ref = stats.bernoulli(p)
    return Case(Bernoulli(var=["x"], probs=_t(p), event_ndim=1), x, ref.logpmf(x).sum(-1),
                td.Independent(td.Bernoulli(probs=_t(p)), 1), ref.mean(), ref.var(), ref.entropy().sum(-1))


def _bernoulli_probs_continuous(data: st.DataObject, s: int, b: int, d: int) -> Case:
    p, x = _array(data, (b, d), 0.01, 0.99), _array(data, (s, b, d), 0.0, 1.0)
    ref = stats.bernoulli(p)
    lp = (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(-1)
    return Case(Bernoulli(var=["x"], probs=_t(p), event_ndim=1), x, lp,
                td.Independent(td.Bernoulli(probs=_t(p), validate_args=False), 1),
                ref.mean(), ref.var(), ref.entropy().sum(-1))


def _bernoulli_logits(data: st.DataObject, s: int, b: int, d: int) -> Case:
    logits, x = _array(data, (b, d), -8, 8), _binary(data, (s, b, d))
    p = sps.expit(logits)
    ref = stats.bernoulli(p)
    return Case(Bernoulli(var=["x"], logits=_t(logits), event_ndim=1), x, ref.logpmf(x).sum(-1),
                td.Independent(td.Bernoulli(logits=_t(logits)), 1), ref.mean(), ref.var(),
                ref.entropy().sum(-1))


def _bernoulli_logits_continuous(data: st.DataObject, s: int, b: int, d: int) -> Case:
    logits, x = _array(data, (b, d), -8, 8), _array(data, (s, b, d), 0.0, 1.0)
    p = sps.expit(logits)
    ref = stats.bernoulli(p)
    lp = (x * sps.log_expit(logits) + (1 - x) * sps.log_expit(-logits)).sum(-1)
    return Case(Bernoulli(var=["x"], logits=_t(logits), event_ndim=1), x, lp,
                td.Independent(td.Bernoulli(logits=_t(logits), validate_args=False), 1),
                ref.mean(), ref.var(), ref.entropy().sum(-1))


def _categorical_reference(probs: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, ...]:
    """scipy's multinomial with one trial is the categorical distribution over one-hot vectors."""
    s, b = onehot.shape[:2]
    lp = np.array([[stats.multinomial(1, probs[j]).logpmf(onehot[i, j]) for j in range(b)]
                   for i in range(s)])
    return lp, probs, probs * (1 - probs), stats.entropy(probs, axis=-1)


def _categorical_onehot(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k = d + 1
    probs = _simplex(data, (b, k), 0.01)
    idx = data.draw(hnp.arrays(np.int64, (s, b), elements=st.integers(0, k - 1)))
    x = _onehot(idx, k)
    lp, mean, var, ent = _categorical_reference(probs, x)
    return Case(Categorical(var=["x"], probs=_t(probs), event_ndim=1), x, lp,
                td.OneHotCategorical(probs=_t(probs)), mean, var, ent)


def _categorical_index(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k = d + 1
    logits = _array(data, (b, k), -5, 5)
    probs = sps.softmax(logits, axis=-1)
    idx = data.draw(hnp.arrays(np.int64, (s, b), elements=st.integers(0, k - 1)))
    x = _onehot(idx, k)
    lp, mean, var, ent = _categorical_reference(probs, x)
    # also checked by hand: log π at the index
    np.testing.assert_allclose(lp, np.log(np.take_along_axis(np.broadcast_to(probs, (s, b, k)),
                                                             idx[..., None], -1))[..., 0], rtol=1e-9)
    return Case(Categorical(var=["x"], logits=_t(logits), event_ndim=1), x, lp,
                td.OneHotCategorical(logits=_t(logits)), mean, var, ent, given_value=torch.as_tensor(idx))


def _relaxed_bernoulli(data: st.DataObject, s: int, b: int, d: int) -> Case:
    temp = data.draw(_floats(0.2, 2.0))
    p, y = _array(data, (b, d), 0.02, 0.98), _array(data, (s, b, d), 0.02, 0.98)
    return Case(RelaxedBernoulli(var=["x"], temperature=torch.tensor(temp, dtype=F64), probs=_t(p),
                                 event_ndim=1),
                y, _binary_concrete_logpdf(y, p, temp).sum(-1),
                td.Independent(td.RelaxedBernoulli(torch.tensor(temp, dtype=F64), probs=_t(p)), 1))


def _relaxed_categorical(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k = d + 1
    temp = data.draw(_floats(0.2, 2.0))
    logits = _array(data, (b, k), -4, 4)
    probs = sps.softmax(logits, axis=-1)
    y = _simplex(data, (s, b, k), 0.05)
    return Case(RelaxedCategorical(var=["x"], temperature=torch.tensor(temp, dtype=F64), logits=_t(logits),
                                   event_ndim=1),
                y, _concrete_logpdf(y, probs, temp),
                td.RelaxedOneHotCategorical(torch.tensor(temp, dtype=F64), logits=_t(logits)))


def _laplace(data: st.DataObject, s: int, b: int, d: int) -> Case:
    loc, scale = _array(data, (b, d), -5, 5), _array(data, (b, d), 0.05, 5)
    x = _array(data, (s, b, d), -10, 10)
    ref = stats.laplace(loc, scale)
    return Case(Laplace(var=["x"], loc=_t(loc), scale=_t(scale), event_ndim=1), x, ref.logpdf(x).sum(-1),
                td.Independent(td.Laplace(_t(loc), _t(scale)), 1), ref.mean(), ref.var(),
                ref.entropy().sum(-1))


def _beta(data: st.DataObject, s: int, b: int, d: int) -> Case:
    a, c = _array(data, (b, d), 0.2, 5), _array(data, (b, d), 0.2, 5)
    x = _array(data, (s, b, d), 0.01, 0.99)
    ref = stats.beta(a, c)
    return Case(Beta(var=["x"], concentration1=_t(a), concentration0=_t(c), event_ndim=1), x,
                ref.logpdf(x).sum(-1), td.Independent(td.Beta(_t(a), _t(c)), 1), ref.mean(), ref.var(),
                ref.entropy().sum(-1))


def _gamma(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k, rate = _array(data, (b, d), 0.2, 5), _array(data, (b, d), 0.2, 5)
    x = _array(data, (s, b, d), 0.01, 10)
    ref = stats.gamma(k, scale=1 / rate)
    return Case(Gamma(var=["x"], concentration=_t(k), rate=_t(rate), event_ndim=1), x,
                ref.logpdf(x).sum(-1), td.Independent(td.Gamma(_t(k), _t(rate)), 1), ref.mean(), ref.var(),
                ref.entropy().sum(-1))


def _dirichlet(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k = d + 1
    alpha = _array(data, (b, k), 0.2, 5)
    x = _simplex(data, (s, b, k), 0.02)
    refs = [stats.dirichlet(alpha[j]) for j in range(b)]
    lp = np.array([[refs[j].logpdf(x[i, j]) for j in range(b)] for i in range(s)])
    return Case(Dirichlet(var=["x"], concentration=_t(alpha), event_ndim=1), x, lp,
                td.Dirichlet(_t(alpha)), np.stack([r.mean() for r in refs]),
                np.stack([r.var() for r in refs]), np.array([r.entropy() for r in refs]))


def _multinomial(data: st.DataObject, s: int, b: int, d: int) -> Case:
    k = d + 1
    n = data.draw(st.integers(1, 6))
    probs = _simplex(data, (b, k), 0.02)
    draws = data.draw(hnp.arrays(np.int64, (s, b, n), elements=st.integers(0, k - 1)))
    x = _onehot(draws, k).sum(-2)  # counts of n trials, (S, B, K)
    refs = [stats.multinomial(n, probs[j]) for j in range(b)]
    lp = np.array([[refs[j].logpmf(x[i, j]) for j in range(b)] for i in range(s)])
    return Case(Multinomial(var=["x"], total_count=n, probs=_t(probs), event_ndim=1), x, lp,
                td.Multinomial(n, probs=_t(probs)), n * probs,
                np.stack([np.diag(r.cov()) for r in refs]), np.array([r.entropy() for r in refs]))


CASES: dict[str, Callable[[st.DataObject, int, int, int], Case]] = {
    "normal": _normal,
    "bernoulli_probs": _bernoulli_probs,
    "bernoulli_probs_continuous": _bernoulli_probs_continuous,
    "bernoulli_logits": _bernoulli_logits,
    "bernoulli_logits_continuous": _bernoulli_logits_continuous,
    "categorical_onehot": _categorical_onehot,
    "categorical_index": _categorical_index,
    "relaxed_bernoulli": _relaxed_bernoulli,
    "relaxed_categorical": _relaxed_categorical,
    "laplace": _laplace,
    "beta": _beta,
    "gamma": _gamma,
    "dirichlet": _dirichlet,
    "multinomial": _multinomial,
}

DIMS = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4))  # S, B, D


@pytest.mark.parametrize("family", list(CASES))
@SETTINGS
@given(dims=DIMS, data=st.data())
def test_family_matches_scipy_and_torch(family: str, dims: tuple[int, int, int], data: st.DataObject) -> None:
    s, b, d = dims
    case = CASES[family](data, s, b, d)
    x = case.given_value if case.given_value is not None else _t(case.value)
    lp = case.dist.log_prob({"x": x})
    check(lp, case.log_prob)  # (S, B): summed over the event dimension only
    check(lp, case.torch_dist.log_prob(_t(case.value)))
    # a single draw of the batch: (B, ...) gives (B,)
    check(case.dist.log_prob({"x": x[0]}), case.log_prob[0])
    if case.mean is not None:
        check(case.dist.mean(), case.mean)
        check(case.dist.mean(), case.torch_dist.mean)
        check(case.dist.variance(), case.variance)
        check(case.dist.variance(), case.torch_dist.variance)
        check(case.dist.entropy(), case.entropy)
        check(case.dist.entropy(), case.torch_dist.entropy())


# -- shapes: conditional families, features_shape priors, event_ndim -------------------------------------
class LocScale(nn.Module):
    """A small encoder: ``x -> {loc, scale}``; its layers serve as the test's own reference."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.loc = nn.Linear(d_in, d_out)
        self.log_scale = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.loc(x), "scale": self.log_scale(x).exp()}


class _Fn(nn.Module):
    """A network given as a function of the conditions (closing over the test's parameters)."""

    def __init__(self, fn: Callable[..., dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fn(*args)


@pytest.mark.parametrize(("s", "b", "d_in", "d"), [(1, 1, 1, 1), (3, 5, 4, 2), (2, 7, 3, 6)])
def test_conditional_normal_with_net_sums_event_dims_only(s: int, b: int, d_in: int, d: int) -> None:
    net = LocScale(d_in, d).double()
    q = Normal(var=["z"], cond_var=["x"], net=net, name="q")
    x = torch.randn(b, d_in, dtype=F64)
    z = torch.randn(s, b, d, dtype=F64)
    with torch.no_grad():
        loc, scale = net.loc(x).numpy(), net.log_scale(x).exp().numpy()
    ref = stats.norm(loc, scale)
    check(q.log_prob({"x": x, "z": z}), ref.logpdf(z.numpy()).sum(-1))  # (S, B)
    check(q.log_prob({"x": x, "z": z[0]}), ref.logpdf(z[0].numpy()).sum(-1))  # (B,)
    check(q.mean({"x": x}), loc)
    check(q.variance({"x": x}), scale**2)
    check(q.entropy({"x": x}), ref.entropy().sum(-1))
    assert q.sample({"x": x})["z"].shape == (b, d)
    assert q.sample({"x": x}, sample_shape=(s,))["z"].shape == (s, b, d)
    assert q.sample({"x": x}, sample_shape=(s, 2))["z"].shape == (s, 2, b, d)


def test_features_shape_prior() -> None:
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[3], name="p_{prior}")
    assert repr(prior) == "Normal(p_{prior}(z))"
    z = torch.randn(4, 5, 3)
    check(prior.log_prob({"z": z}), stats.norm.logpdf(z.numpy()).sum(-1), rtol=1e-5)
    check(prior.log_prob({"z": z[0, 0]}), stats.norm.logpdf(z[0, 0].numpy()).sum(), rtol=1e-5)
    check(prior.mean(), np.zeros(3))
    check(prior.variance(), np.ones(3))
    check(prior.entropy(), 3 * stats.norm.entropy(), rtol=1e-6)
    assert prior.sample(batch_n=5)["z"].shape == (5, 3)
    assert prior.sample(sample_shape=(4,), batch_n=5)["z"].shape == (4, 5, 3)
    assert prior.sample(sample_shape=2)["z"].shape == (2, 3)
    assert prior.sample()["z"].shape == (3,)

    grid = Normal(var=["z"], loc=0.5, scale=2.0, features_shape=[2, 3])
    z = torch.randn(4, 5, 2, 3)
    check(grid.log_prob({"z": z}), stats.norm.logpdf(z.numpy(), 0.5, 2.0).sum((-1, -2)), rtol=1e-5)
    assert grid.sample(batch_n=5)["z"].shape == (5, 2, 3)

    bern = Bernoulli(var=["x"], probs=0.3, features_shape=[4])
    x = torch.bernoulli(torch.full((6, 4), 0.5))
    check(bern.log_prob({"x": x}), stats.bernoulli.logpmf(x.numpy(), 0.3).sum(-1), rtol=1e-5)


def test_learnable_prior_parameter_is_registered_and_trained() -> None:
    loc = nn.Parameter(torch.zeros(2, dtype=F64))
    prior = Normal(var=["z"], loc=loc, scale=torch.ones(2, dtype=F64))
    assert any(p is loc for p in prior.parameters())
    z = torch.tensor([[1.0, -2.0]], dtype=F64)
    prior.log_prob({"z": z}).sum().backward()
    check(loc.grad, np.array([1.0, -2.0]))  # d/dμ log N(z; μ, 1) = z - μ


def test_string_parameter_is_read_from_the_inputs() -> None:
    p = Normal(var=["x"], loc="m", scale="s", name="p")
    assert p.cond_var == ["m", "s"] and p.prob_text == "p(x|m,s)"
    m, s = torch.randn(4, 2, dtype=F64), torch.rand(4, 2, dtype=F64) + 0.1
    x = torch.randn(3, 4, 2, dtype=F64)
    # like a network-given parameter, a variable-given one has the last dimension as its event
    check(p.log_prob({"m": m, "s": s, "x": x}), stats.norm.logpdf(x.numpy(), m.numpy(), s.numpy()).sum(-1))
    q = Normal(var=["x"], cond_var=["z"], loc="z", scale=0.5)
    assert q.cond_var == ["z"]
    check(q.log_prob({"z": m, "x": x}), stats.norm.logpdf(x.numpy(), m.numpy(), 0.5).sum(-1), rtol=1e-6)
    assert q.sample({"z": m}, sample_shape=(3,))["x"].shape == (3, 4, 2)


class ImageLogits(nn.Module):
    def __init__(self, d_in: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, 16)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.fc(z).reshape(-1, 1, 4, 4)}


def test_event_ndim_override_for_images() -> None:
    net = ImageLogits(2).double()
    p = Bernoulli(var=["x"], cond_var=["z"], net=net, event_ndim=3)
    z = torch.randn(5, 2, dtype=F64)
    x = torch.bernoulli(torch.full((3, 5, 1, 4, 4), 0.5, dtype=F64))
    with torch.no_grad():
        logits = net.fc(z).reshape(5, 1, 4, 4).numpy()
    ref = stats.bernoulli.logpmf(x.numpy(), sps.expit(logits)).sum((-1, -2, -3))
    check(p.log_prob({"z": z, "x": x}), ref)  # (S, B)
    check(p.log_prob({"z": z, "x": x[0]}), ref[0])  # (B,)
    assert p.sample({"z": z})["x"].shape == (5, 1, 4, 4)
    assert p.sample({"z": z}, sample_shape=(3,))["x"].shape == (3, 5, 1, 4, 4)
    check(p.entropy({"z": z}), stats.bernoulli.entropy(sps.expit(logits)).sum((-1, -2, -3)))
    # the default for a network-given family is one event dimension
    p1 = Bernoulli(var=["x"], cond_var=["z"], net=net)
    check(p1.log_prob({"z": z, "x": x[0]}), stats.bernoulli.logpmf(x[0].numpy(), sps.expit(logits)).sum(-1))


def test_event_ndim_below_the_family_minimum_is_rejected() -> None:
    with pytest.raises(ValueError, match="event_ndim"):
        Categorical(var=["x"], probs=torch.tensor([0.5, 0.5]), event_ndim=0)


# -- sampling ---------------------------------------------------------------------------------------------
PRIORS: dict[str, Callable[[], Family]] = {
    "normal": lambda: Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[3]),
    "bernoulli": lambda: Bernoulli(var=["x"], probs=0.3, features_shape=[3]),
    "categorical": lambda: Categorical(var=["x"], probs=torch.tensor([0.2, 0.3, 0.5])),
    "relaxed_bernoulli": lambda: RelaxedBernoulli(var=["x"], probs=torch.tensor([0.2, 0.5, 0.9])),
    "relaxed_categorical": lambda: RelaxedCategorical(var=["x"], logits=torch.tensor([0.0, 1.0, -1.0])),
    "laplace": lambda: Laplace(var=["x"], loc=torch.zeros(3), scale=torch.ones(3)),
    "beta": lambda: Beta(var=["x"], concentration1=torch.full((3,), 2.0), concentration0=torch.ones(3)),
    "gamma": lambda: Gamma(var=["x"], concentration=torch.full((3,), 2.0), rate=torch.full((3,), 3.0)),
    "dirichlet": lambda: Dirichlet(var=["x"], concentration=torch.tensor([1.0, 2.0, 3.0])),
    "multinomial": lambda: Multinomial(var=["x"], total_count=4, probs=torch.tensor([0.2, 0.3, 0.5])),
}


@pytest.mark.parametrize("family", list(PRIORS))
def test_sample_shapes(family: str) -> None:
    p = PRIORS[family]()
    assert p.sample()["x"].shape == (3,)
    assert p.sample(batch_n=5)["x"].shape == (5, 3)
    assert p.sample(sample_shape=4)["x"].shape == (4, 3)
    assert p.sample(sample_shape=(2,), batch_n=5)["x"].shape == (2, 5, 3)
    assert p.sample(sample_shape=(2, 4), batch_n=5)["x"].shape == (2, 4, 5, 3)
    drawn = p.sample(sample_shape=(2,), batch_n=5)
    assert p.log_prob(drawn).shape == (2, 5)
    assert bool(torch.isfinite(p.log_prob(drawn)).all())


def test_sample_returns_the_inputs_with_the_draws() -> None:
    q = Normal(var=["z"], cond_var=["x"], net=LocScale(2, 3), name="q")
    x = torch.randn(4, 2)
    out = q.sample({"x": x, "extra": 1})
    assert out["x"] is x and out["extra"] == 1 and out["z"].shape == (4, 3)


def test_normal_reparameterised_sample_carries_gradient() -> None:
    loc = nn.Parameter(torch.zeros(3))
    p = Normal(var=["z"], loc=loc, scale=2.0)
    z = p.sample(batch_n=10)["z"]
    assert z.requires_grad
    z.sum().backward()
    check(loc.grad, np.full(3, 10.0))  # dz/dμ = 1 for each of the 10 draws
    z = p.sample(batch_n=10, reparam=False)["z"]
    assert not z.requires_grad

    net = LocScale(2, 3)
    q = Normal(var=["z"], cond_var=["x"], net=net)
    q.sample({"x": torch.randn(4, 2)}, sample_shape=(5,))["z"].pow(2).sum().backward()
    assert net.loc.weight.grad is not None and net.log_scale.weight.grad is not None
    assert float(net.log_scale.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("family", ["bernoulli_probs", "bernoulli_logits", "categorical", "multinomial"])
def test_discrete_samples_carry_no_gradient(family: str) -> None:
    w = nn.Parameter(torch.tensor([0.1, -0.4, 0.3]))
    if family == "bernoulli_probs":
        p = Bernoulli(var=["x"], cond_var=["c"], net=_Fn(lambda c: {"probs": torch.sigmoid(w + c)}))
    elif family == "bernoulli_logits":
        p = Bernoulli(var=["x"], cond_var=["c"], net=_Fn(lambda c: {"logits": w + c}))
    elif family == "categorical":
        p = Categorical(var=["x"], cond_var=["c"], net=_Fn(lambda c: {"logits": w + c}))
    else:
        p = Multinomial(var=["x"], cond_var=["c"], total_count=3, net=_Fn(lambda c: {"logits": w + c}))
    x = p.sample({"c": torch.zeros(6, 3)}, sample_shape=(2,))["x"]
    assert x.shape == (2, 6, 3)
    assert not x.requires_grad
    # ... while the log-probability of the draw does reach the parameters
    p.log_prob({"c": torch.zeros(6, 3), "x": x}).sum().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_straight_through_relaxed_bernoulli_is_hard_with_gradient() -> None:
    logits = nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    p = RelaxedBernoulli(var=["x"], temperature=0.5, logits=logits, straight_through=True)
    x = p.sample(sample_shape=(50,), batch_n=3)["x"]
    assert x.shape == (50, 3, 4)
    assert bool(((x == 0) | (x == 1)).all())
    assert 0 < float(x.detach().mean()) < 1
    assert x.requires_grad
    (x * torch.arange(1.0, 5.0)).sum().backward()
    assert logits.grad is not None and bool((logits.grad != 0).all())


def test_straight_through_relaxed_categorical_is_one_hot_with_gradient() -> None:
    logits = nn.Parameter(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    p = RelaxedCategorical(var=["x"], temperature=0.5, logits=logits, straight_through=True)
    x = p.sample(sample_shape=(50,), batch_n=3)["x"]
    assert x.shape == (50, 3, 4)
    assert bool(((x == 0) | (x == 1)).all())
    torch.testing.assert_close(x.detach().sum(-1), torch.ones(50, 3))
    assert x.requires_grad
    (x * torch.arange(1.0, 5.0)).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_soft_relaxed_samples_are_in_the_open_simplex_with_gradient() -> None:
    logits = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
    rb = RelaxedBernoulli(var=["x"], temperature=1.0, logits=logits)
    x = rb.sample(batch_n=100)["x"]
    assert x.requires_grad and bool(((x > 0) & (x < 1)).all())
    assert not bool(((x == 0) | (x == 1)).all())
    rc = RelaxedCategorical(var=["x"], temperature=1.0, logits=logits)
    y = rc.sample(batch_n=100)["x"]
    assert y.requires_grad and bool((y > 0).all())
    torch.testing.assert_close(y.detach().sum(-1), torch.ones(100))
    assert not bool(((y == 0) | (y == 1)).all())


def test_multinomial_total_count() -> None:
    p = Multinomial(var=["x"], total_count=7, probs=torch.tensor([0.1, 0.2, 0.3, 0.4]))
    x = p.sample(sample_shape=(20,), batch_n=8)["x"]
    assert x.shape == (20, 8, 4)
    torch.testing.assert_close(x.sum(-1), torch.full((20, 8), 7.0))
    assert bool((x >= 0).all()) and bool((x == x.round()).all())
    assert bool(torch.isfinite(p.log_prob({"x": x})).all())
    wrong = torch.tensor([[1.0, 2.0, 3.0, 0.0], [2.0, 2.0, 2.0, 1.0], [7.0, 1.0, 0.0, 0.0]])
    lp = p.log_prob({"x": wrong})
    assert lp.shape == (3,)
    assert lp[0] == -math.inf and lp[2] == -math.inf
    check(lp[1], stats.multinomial(7, [0.1, 0.2, 0.3, 0.4]).logpmf([2, 2, 2, 1]), rtol=1e-5)


def test_categorical_index_and_one_hot_values_agree_and_samples_are_one_hot() -> None:
    probs = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=F64)
    p = Categorical(var=["y"], cond_var=["c"], net=_Fn(lambda c: {"probs": probs + 0 * c}))
    idx = torch.tensor([[2, 0], [1, 1]])
    c = torch.zeros(2, 1, dtype=F64)
    expected = np.log(probs.numpy()[[0, 1], idx.numpy()])
    check(p.log_prob({"c": c, "y": idx}), expected)
    check(p.log_prob({"c": c, "y": nn.functional.one_hot(idx, 3).to(F64)}), expected)
    y = p.sample({"c": c}, sample_shape=(30,))["y"]
    assert y.shape == (30, 2, 3)
    assert bool(((y == 0) | (y == 1)).all()) and bool((y.sum(-1) == 1).all())
    with pytest.raises(ParameterError, match="'y'"):
        p.log_prob({"c": c, "y": torch.tensor([0, 3])})


def _sample_mean_cases() -> dict[str, Callable[[], Family]]:
    return {
        **PRIORS,
        "normal_cond": lambda: Normal(var=["x"], loc=torch.tensor([1.0, -2.0, 3.0]),
                                      scale=torch.tensor([0.5, 1.0, 2.0])),
        "bernoulli_logits": lambda: Bernoulli(var=["x"], logits=torch.tensor([-1.0, 0.0, 2.0])),
        "categorical_logits": lambda: Categorical(var=["x"], logits=torch.tensor([1.0, 0.0, -1.0])),
        "beta_skewed": lambda: Beta(var=["x"], concentration1=torch.tensor([0.5, 5.0, 1.0]),
                                    concentration0=torch.tensor([2.0, 1.0, 1.0])),
    }


@pytest.mark.parametrize("family", [f for f in _sample_mean_cases() if not f.startswith("relaxed")])
def test_sample_mean_matches_mean(family: str) -> None:
    p = _sample_mean_cases()[family]()
    n = 20000
    x = p.sample(batch_n=n)["x"].detach().double()
    mean, var = p.mean().double(), p.variance().double()
    assert x.shape == (n, 3)
    tol = 5 * (var / n).sqrt() + 1e-3
    assert bool(((x.mean(0) - mean).abs() < tol).all()), (x.mean(0), mean)
    torch.testing.assert_close(x.var(0), var, rtol=0.1, atol=1e-3)


def test_relaxed_samples_match_torch_relaxed_distribution_moments() -> None:
    """Relaxed families have no closed-form mean: compare draws with torch's own draws."""
    logits = torch.tensor([0.5, -1.0, 2.0])
    for ours, ref in [
        (RelaxedBernoulli(var=["x"], temperature=0.7, logits=logits),
         td.RelaxedBernoulli(torch.tensor(0.7), logits=logits)),
        (RelaxedCategorical(var=["x"], temperature=0.7, logits=logits),
         td.RelaxedOneHotCategorical(torch.tensor(0.7), logits=logits)),
    ]:
        a = ours.sample(batch_n=20000)["x"].detach()
        b = ref.sample((20000,))
        torch.testing.assert_close(a.mean(0), b.mean(0), atol=0.02, rtol=0)


# -- no stale cache -----------------------------------------------------------------------------------------
def test_log_prob_after_in_place_weight_change_is_fresh() -> None:
    net = LocScale(2, 3).double()
    q = Normal(var=["z"], cond_var=["x"], net=net, name="q")
    inputs = {"x": torch.randn(4, 2, dtype=F64), "z": torch.randn(4, 3, dtype=F64)}

    def reference() -> np.ndarray:
        with torch.no_grad():
            loc, scale = net.loc(inputs["x"]).numpy(), net.log_scale(inputs["x"]).exp().numpy()
        return stats.norm.logpdf(inputs["z"].numpy(), loc, scale).sum(-1)

    first = q.log_prob(inputs)
    check(first, reference())
    with torch.no_grad():
        net.loc.weight.add_(1.0)
        net.log_scale.bias.sub_(0.3)
    second = q.log_prob(inputs)
    check(second, reference())
    assert not torch.allclose(first, second)
    check(q.mean({"x": inputs["x"]}), net.loc(inputs["x"]))


def test_sample_after_in_place_weight_change_is_fresh() -> None:
    lin = nn.Linear(2, 3).double()
    q = Normal(var=["z"], cond_var=["x"], net=_Fn(lambda x: {"loc": lin(x)}),
               scale=torch.tensor(1e-6, dtype=F64))
    x = torch.randn(4, 2, dtype=F64)
    z1 = q.sample({"x": x})["z"]
    check(z1, lin(x), atol=1e-4)
    with torch.no_grad():
        lin.weight.mul_(-2.0)
        lin.bias.add_(5.0)
    z2 = q.sample({"x": x})["z"]
    check(z2, lin(x), atol=1e-4)


def test_backward_twice_through_separate_calls_on_the_same_input() -> None:
    net = LocScale(2, 3).double()
    q = Normal(var=["z"], cond_var=["x"], net=net)
    inputs = {"x": torch.randn(4, 2, dtype=F64), "z": torch.randn(4, 3, dtype=F64)}
    q.log_prob(inputs).sum().backward()
    g1 = net.loc.weight.grad.clone()
    q.log_prob(inputs).sum().backward()  # a second graph: no "backward through the graph a second time"
    torch.testing.assert_close(net.loc.weight.grad, 2 * g1)
    q.sample({"x": inputs["x"]})["z"].sum().backward()
    q.sample({"x": inputs["x"]})["z"].sum().backward()


# -- bad input ------------------------------------------------------------------------------------------------
def test_missing_conditioning_variable_names_variable_and_distribution() -> None:
    q = Normal(var=["z"], cond_var=["x"], net=LocScale(2, 3), name="q")
    for call in (lambda: q.sample({"y": torch.zeros(1, 2)}),
                 lambda: q.log_prob({"z": torch.zeros(1, 3)}),
                 lambda: q.mean({})):
        with pytest.raises(MissingVariableError) as err:
            call()
        assert "'x'" in str(err.value) and "q(z|x)" in str(err.value) and "Normal" in str(err.value)
    with pytest.raises(MissingVariableError, match="'z'"):
        q.log_prob({"x": torch.zeros(1, 2)})


def test_wrong_event_shape_is_a_shape_error_naming_the_variable() -> None:
    p = Bernoulli(var=["x"], cond_var=["z"], net=_Fn(lambda z: {"logits": z @ torch.ones(2, 784)}))
    with pytest.raises(ShapeError, match="'x'") as err:
        p.log_prob({"z": torch.zeros(3, 2), "x": torch.zeros(3, 783)})
    assert "783" in str(err.value) and "784" in str(err.value)
    img = Bernoulli(var=["x"], cond_var=["z"], net=ImageLogits(2), event_ndim=3)
    with pytest.raises(ShapeError, match="'x'"):
        img.log_prob({"z": torch.zeros(3, 2), "x": torch.zeros(3, 16)})


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: Normal(var=["x"], loc=0.0, scale=-1.0), "scale"),
        (lambda: Normal(var=["x"], loc=0.0, scale=torch.tensor([1.0, 0.0])), "scale"),
        (lambda: Bernoulli(var=["x"], probs=torch.tensor([0.5, 1.2])), "probs"),
        (lambda: Categorical(var=["x"], probs=torch.tensor([0.5, 1.5])), "probs"),
        (lambda: Laplace(var=["x"], loc=0.0, scale=-2.0), "scale"),
        (lambda: Gamma(var=["x"], concentration=-1.0, rate=1.0), "concentration"),
        (lambda: Beta(var=["x"], concentration1=1.0, concentration0=-0.5), "concentration0"),
        (lambda: Dirichlet(var=["x"], concentration=torch.tensor([1.0, -1.0])), "concentration"),
        (lambda: Multinomial(var=["x"], total_count=3, probs=torch.tensor([0.7, 0.7])), "probs"),
    ],
)
def test_bad_constant_parameter_is_a_parameter_error_naming_it(make: Callable[[], Family], param: str) -> None:
    with pytest.raises(ParameterError, match=f"'{param}'"):
        make()


def test_network_returning_negative_scale_on_first_call() -> None:
    q = Normal(var=["z"], cond_var=["x"],
               net=_Fn(lambda x: {"loc": x, "scale": -torch.ones_like(x)}), name="q")
    with pytest.raises(ParameterError, match="'scale'"):
        q.sample({"x": torch.zeros(2, 3)})
    q2 = Normal(var=["z"], cond_var=["x"],
                net=_Fn(lambda x: {"loc": x, "scale": -torch.ones_like(x)}), name="q")
    with pytest.raises(ParameterError, match="'scale'"):
        q2.log_prob({"x": torch.zeros(2, 3), "z": torch.zeros(2, 3)})


def test_unknown_parameter_name_is_a_value_error() -> None:
    class Custom(Family):
        torch_cls = td.Normal
        param_names = ("loc", "scale")
        alternatives = (("loc",), ("scale",))

    with pytest.raises(ValueError, match="'rate'"):
        Custom(["x"], params={"loc": 0.0, "rate": 1.0})
    q = Normal(var=["z"], cond_var=["x"], net=_Fn(lambda x: {"loc": x, "sigma": x.exp()}))
    with pytest.raises(ValueError, match="'sigma'"):
        q.sample({"x": torch.zeros(2, 3)})


def test_var_overlapping_cond_var_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'z'"):
        Normal(var=["z"], cond_var=["z"], net=LocScale(3, 3))
    with pytest.raises(ValueError, match="'z'"):
        Normal(var=["z"], cond_var=["x", "z"], net=LocScale(3, 3))


def test_missing_required_parameter_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scale"):
        Normal(var=["x"], loc=0.0)
    with pytest.raises(ValueError, match="probs"):
        Bernoulli(var=["x"])
