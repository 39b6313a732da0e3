"""Analytic KL divergences (``deepgm.distributions.kl``): which pairs have one, found through torch's public
API, and their values against ``torch.distributions.kl_divergence``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.distributions as td
from torch import nn

from deepgm.distributions import (
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    Env,
    Family,
    FromTorch,
    Gamma,
    Laplace,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
    analytic_kl,
    has_analytic_kl,
    is_standard_normal,
)

FAMILIES: dict[str, Callable[[], Family]] = {
    "normal": lambda: Normal(var=["z"], loc=torch.randn(3), scale=torch.rand(3) + 0.5),
    "bernoulli": lambda: Bernoulli(var=["z"], probs=torch.rand(3) * 0.8 + 0.1),
    "categorical": lambda: Categorical(var=["z"], probs=torch.softmax(torch.randn(3), -1)),
    "relaxed_bernoulli": lambda: RelaxedBernoulli(var=["z"], probs=torch.rand(3) * 0.8 + 0.1),
    "relaxed_categorical": lambda: RelaxedCategorical(var=["z"], probs=torch.softmax(torch.randn(3), -1)),
    "laplace": lambda: Laplace(var=["z"], loc=torch.randn(3), scale=torch.rand(3) + 0.5),
    "beta": lambda: Beta(var=["z"], concentration1=torch.rand(3) + 1, concentration0=torch.rand(3) + 1),
    "gamma": lambda: Gamma(var=["z"], concentration=torch.rand(3) + 1, rate=torch.rand(3) + 1),
    "dirichlet": lambda: Dirichlet(var=["z"], concentration=torch.rand(3) + 1),
}


def _torch_has_kl(p: Family, q: Family) -> bool:
    try:
        td.kl_divergence(p.dist(), q.dist())
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("pn", sorted(FAMILIES))
@pytest.mark.parametrize("qn", sorted(FAMILIES))
def test_has_analytic_kl_says_what_torch_can_compute(pn: str, qn: str) -> None:
    p, q = FAMILIES[pn](), FAMILIES[qn]()
    assert has_analytic_kl(p, q) == _torch_has_kl(p, q)
    if has_analytic_kl(p, q):
        want = p.sum_event(td.kl_divergence(p.dist(), q.dist()))
        assert torch.allclose(analytic_kl(p, q, Env()), want, atol=1e-5)


def test_pairs_torch_dispatches_but_cannot_compute_are_not_analytic() -> None:
    # torch's registry matches Normal-Bernoulli (both exponential families) and the relaxed pairs (both
    # transformed distributions), then raises NotImplementedError when asked: no closed form here
    assert not has_analytic_kl(FAMILIES["normal"](), FAMILIES["bernoulli"]())
    assert not has_analytic_kl(FAMILIES["relaxed_bernoulli"](), FAMILIES["relaxed_bernoulli"]())
    assert not has_analytic_kl(FAMILIES["normal"](), FromTorch(["z"], fn=lambda: td.Normal(0.0, 1.0)))


class LocScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, s = self.lin(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 0.1}


@pytest.mark.parametrize("prior_shape", [(3,), ()])
def test_kl_to_the_standard_normal_matches_torch(prior_shape: tuple[int, ...]) -> None:
    q = Normal(var=["z"], cond_var=["x"], net=LocScale())
    prior = Normal(var=["z"], loc=torch.zeros(prior_shape), scale=torch.ones(prior_shape), event_ndim=1)
    assert is_standard_normal(prior)
    env = Env({"x": torch.randn(5, 4)})
    pq = q.params_at(env)
    want = td.kl_divergence(td.Normal(pq["loc"], pq["scale"]), td.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(analytic_kl(q, prior, env), want, atol=1e-6)


def test_kl_normal_normal_matches_torch() -> None:
    q = Normal(var=["z"], cond_var=["x"], net=LocScale())
    p = Normal(var=["z"], cond_var=["x"], net=LocScale())
    env = Env({"x": torch.randn(5, 4)})
    assert not is_standard_normal(p)
    got = analytic_kl(q, p, env)
    assert torch.allclose(got, td.kl_divergence(q.torch_dist(q.params_at(env)),
                                                p.torch_dist(p.params_at(env))).sum(-1), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Normal(var=["z"], loc=1.0, scale=1.0, features_shape=[2]),
        lambda: Normal(var=["z"], loc=0.0, scale=2.0, features_shape=[2]),
        lambda: Normal(var=["z"], loc=nn.Parameter(torch.zeros(2)), scale=1.0),
        lambda: Normal(var=["z"], cond_var=["x"], net=LocScale()),
        lambda: Normal(var=["z"], loc=0.0, scale="s"),
        lambda: Laplace(var=["z"], loc=0.0, scale=1.0, features_shape=[2]),
    ],
)
def test_only_a_constant_zero_one_normal_is_standard(make: Callable[[], Family]) -> None:
    assert not is_standard_normal(make())


def test_constant_params_are_the_buffers_only() -> None:
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2])
    params = prior.constant_params()
    assert params is not None and torch.equal(params["loc"], torch.zeros(2))
    assert Normal(var=["z"], loc=nn.Parameter(torch.zeros(2)), scale=1.0).constant_params() is None
    assert Normal(var=["z"], cond_var=["x"], net=LocScale()).constant_params() is None


class _T(td.StudentT):
    """A torch class of our own, with a KL registered through torch's public register_kl."""


@td.register_kl(_T, _T)
def _kl_t_t(p: _T, q: _T) -> torch.Tensor:
    return (p.loc - q.loc) ** 2


class StudentT(Family):
    torch_cls = td.StudentT
    param_names = ("df", "loc", "scale")
    alternatives = (("df",), ("loc",), ("scale",))


class RegisteredT(StudentT):
    torch_cls = _T


def test_a_kl_registered_with_torch_is_found() -> None:
    def make(cls: type[Family], loc: float) -> Family:
        return cls(["z"], params={"df": 3.0, "loc": torch.full((2,), loc), "scale": 1.0})

    assert not has_analytic_kl(make(StudentT, 0.0), make(StudentT, 1.0))
    p, q = make(RegisteredT, 0.0), make(RegisteredT, 1.0)
    assert has_analytic_kl(p, q)
    assert torch.equal(analytic_kl(p, q, Env()), torch.tensor(2.0))
