"""The sample-sharing rule, for every distribution: within one evaluation ``E(q, f) - E(q, f)`` is exactly
zero (both expectations get the same draw), while ``E(q, f, independent=True)`` draws its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.distributions as td
from torch import nn

from deepgm.distributions import (
    Bernoulli,
    Beta,
    Categorical,
    Deterministic,
    Dirichlet,
    Distribution,
    Empirical,
    Env,
    FromTorch,
    Gamma,
    Laplace,
    MixtureOfExperts,
    MixtureOfNormal,
    Multinomial,
    Normal,
    ProductOfNormal,
    RelaxedBernoulli,
    RelaxedCategorical,
)
from deepgm.flows import AffineCoupling, Flow, StandardLogistic, alternating_mask
from deepgm.losses import E, Loss

B, D = 5, 3
S = 4  # draws per expectation: a chance coincidence of two independent draws is then negligible


class LocScale(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, 2 * d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loc, s = self.lin(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 0.1}


class Logits(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.lin(x)}


class Read(Loss):
    """A random-looking function of the drawn variable: a fixed weighting of its values, one per data point."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _eval(self, env: Env) -> Any:
        v = env.get(self.name, "Read").to(torch.float64)
        w = torch.sin(torch.arange(v.numel(), dtype=torch.float64) + 1.0).reshape(v.shape)
        return (v * w).sum()

    def _render(self, latex: bool) -> str:
        return f"read({self.name})"


def _flow() -> Flow:
    base = Normal(var=["u"], loc=0.0, scale=1.0, features_shape=[2])
    return Flow(var=["z"], base=base, transforms=[AffineCoupling(alternating_mask(2, i % 2)) for i in range(2)])


def _experts() -> list[Normal]:
    return [Normal(var=["z"], cond_var=["x"], net=LocScale(D, 2), name="q_x"),
            Normal(var=["z"], cond_var=["y"], net=LocScale(D, 2), name="q_y")]


X = {"x": torch.randn(B, D), "y": torch.randn(B, D)}
CASES: dict[str, tuple[Callable[[], Distribution], bool]] = {
    # name: (the distribution over z, whether its draws are random)
    "normal": (lambda: Normal(var=["z"], cond_var=["x"], net=LocScale(D, 2)), True),
    "bernoulli": (lambda: Bernoulli(var=["z"], cond_var=["x"], net=Logits(D, 8)), True),
    "categorical": (lambda: Categorical(var=["z"], cond_var=["x"], net=Logits(D, 6)), True),
    "relaxed_bernoulli": (lambda: RelaxedBernoulli(var=["z"], probs=torch.full((B, 4), 0.3)), True),
    "relaxed_categorical": (lambda: RelaxedCategorical(var=["z"], probs=torch.full((B, 4), 0.25)), True),
    "laplace": (lambda: Laplace(var=["z"], loc=torch.zeros(B, 2), scale=1.0), True),
    "beta": (lambda: Beta(var=["z"], concentration1=torch.full((B, 2), 2.0), concentration0=3.0), True),
    "gamma": (lambda: Gamma(var=["z"], concentration=torch.full((B, 2), 2.0), rate=1.0), True),
    "dirichlet": (lambda: Dirichlet(var=["z"], concentration=torch.ones(B, 4)), True),
    "multinomial": (lambda: Multinomial(var=["z"], total_count=10, probs=torch.full((B, 4), 0.25)), True),
    "deterministic": (lambda: Deterministic(var=["z"], cond_var=["x"], net=_Loc()), False),
    "empirical_with_data": (lambda: Empirical(var=["z"], data=torch.randn(1000, 2)), True),
    "empirical_without_data": (lambda: Empirical(var=["x"]), False),
    "mixture_of_normal": (lambda: MixtureOfNormal(var=["z"], loc=torch.randn(3, 2), scale=0.5), True),
    "product_of_normal": (lambda: ProductOfNormal(_experts()), True),
    "mixture_of_experts": (lambda: MixtureOfExperts(_experts()), True),
    "from_torch": (lambda: FromTorch(["z"], fn=lambda: td.StudentT(3.0, torch.zeros(B, 2), torch.ones(B, 2))), True),
    "from_torch_conditional": (lambda: FromTorch(["z"], ["x"], fn=lambda x: td.Normal(x, 1.0)), True),
    "flow": (_flow, True),
    "standard_logistic": (lambda: StandardLogistic(var=["z"], features_shape=[2]), True),
    "joint": (lambda: Normal(var=["w"], cond_var=["z"], net=LocScale(2, 2))
              * Normal(var=["z"], cond_var=["x"], net=LocScale(D, 2)), True),
    "marginal": (lambda: (Normal(var=["z"], cond_var=["w"], net=LocScale(2, 2))
                          * Normal(var=["w"], cond_var=["x"], net=LocScale(D, 2))).marginalize_var("w"), True),
}


class _Loc(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": 2 * x}


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_expectations_of_one_distribution_share_the_draw(name: str) -> None:
    make, random = CASES[name]
    q = make()
    f = Read(q.var[0])
    same = (E(q, f, sample_shape=S) - E(q, f, sample_shape=S))(X)
    assert torch.equal(same, torch.zeros_like(same)), f"{name}: two expectations drew differently"
    if random:
        indep = (E(q, f, sample_shape=S, independent=True) - E(q, f, sample_shape=S))(X)
        assert float(indep.detach().abs()) > 0, f"{name}: independent=True reused the shared draw"


@pytest.mark.parametrize("name", sorted(n for n, (_, random) in CASES.items() if random))
def test_two_evaluations_never_share(name: str) -> None:
    q = CASES[name][0]()
    f = E(q, Read(q.var[0]), sample_shape=S)
    assert not torch.equal(f(X), f(X)), f"{name}: a draw survived from one evaluation to the next"


def test_a_shared_draw_shares_what_is_computed_from_it() -> None:
    calls = []

    class Counting(LocScale):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            calls.append(1)
            return super().forward(x)

    q = Normal(var=["z"], cond_var=["x"], net=LocScale(D, 2))
    p = Normal(var=["w"], cond_var=["z"], net=Counting(2, 2))
    from deepgm.losses import LogProb

    (E(q, LogProb(p)) - E(q, LogProb(p)))({**X, "w": torch.randn(B, 2)})
    assert len(calls) == 1  # the second expectation's draw is bound under the same version: p's memo hits


def test_a_subclass_cannot_override_the_memoising_template() -> None:
    with pytest.raises(TypeError, match="draw_into"):
        class Bad(Normal):
            def draw_into(self, env: Env, sample_shape: tuple[int, ...] = (), batch_n: int | None = None,
                          reparam: bool = True) -> None:  # type: ignore[misc]
                pass
    with pytest.raises(TypeError, match="memo_params"):
        class Bad2(Normal):
            def memo_params(self, env: Env) -> Any:  # type: ignore[misc]
                return {}


def test_a_new_distribution_implements_only_new_draw_and_shares() -> None:
    class Uniform01(Distribution):
        def new_draw(self, env: Env, sample_shape: tuple[int, ...], batch_n: int | None,
                     reparam: bool) -> tuple[torch.Tensor, int]:
            return torch.rand(sample_shape + (batch_n or 1, 2)), len(sample_shape)

    q = Uniform01(["z"])
    f = Read("z")
    assert float((E(q, f, sample_shape=S) - E(q, f, sample_shape=S))({})) == 0.0
    assert float((E(q, f, sample_shape=S, independent=True) - E(q, f, sample_shape=S))({})) != 0.0


def test_a_joint_with_the_data_distribution_redraws_when_the_data_changes() -> None:
    # the data distribution reads its own variable: the joint's memo key must include that variable
    joint = Empirical(var=["x"]) * Normal(var=["z"], cond_var=["x"], loc="x", scale=1e-3)
    env = Env({"x": torch.zeros(3, 2)})
    joint.draw_into(env)
    assert float(env.values["z"].abs().max()) < 0.1
    env.set("x", torch.ones(3, 2))
    joint.draw_into(env)
    assert float((env.values["z"] - 1).abs().max()) < 0.1
    marginal = (Empirical(var=["x"]) * Normal(var=["z"], cond_var=["x"], loc="x", scale=1e-3)).marginalize_var("x")
    env = Env({"x": torch.zeros(3, 2)})
    marginal.draw_into(env)
    env.set("x", torch.ones(3, 2))
    marginal.draw_into(env)
    assert float((env.values["z"] - 1).abs().max()) < 0.1
