"""SumOver (the exact sum of a term over an integer variable's values) and SquaredError (the regression
loss of a distribution's mean): their values against direct computation, and how they print."""

from __future__ import annotations

import pytest
import torch

from deepgm.distributions import DiscreteUniform, Normal
from deepgm.errors import ObjectiveError
from deepgm.losses import BatchE, E, SquaredError, SumOver


def _predictor() -> Normal:
    return Normal(var=["v"], cond_var=["t"], net=lambda t: {"loc": t.float() ** 2}, scale=1.0, name="p")


def test_sum_over_is_the_sum_of_the_term_at_each_value() -> None:
    sq = SquaredError(_predictor())
    v = torch.tensor([[1.0], [10.0]])
    total = SumOver("t", range(1, 5), sq, batch_like="v")(v=v)
    direct = sum((v[:, 0] - k**2) ** 2 for k in range(1, 5))
    assert torch.allclose(total, direct)
    assert SumOver("t", range(1, 5), sq, batch_like="v").input_var == ["v"]


def test_sum_over_draws_afresh_for_each_value() -> None:
    torch.manual_seed(0)
    noise = Normal(var=["z"], cond_var=["t"], net=lambda t: {"loc": torch.zeros(len(t), 1)}, scale=1.0, name="q")
    draws: list[torch.Tensor] = []

    class Keep(SquaredError):
        def _eval(self, env):  # type: ignore[no-untyped-def]
            draws.append(env.values["z"])
            return super()._eval(env)

    SumOver("t", [1, 2, 3], E(noise, Keep(Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[1]))),
            batch_like="x")(x=torch.zeros(4, 1))
    assert len(draws) == 3 and not torch.equal(draws[0], draws[1])


def test_the_uniform_estimate_averages_to_the_exact_sum() -> None:
    torch.manual_seed(0)
    sq = SquaredError(_predictor())
    v = torch.zeros(20000, 1)
    exact = SumOver("t", range(1, 5), sq, batch_like="v")(v=v)
    estimate = 4 * BatchE(DiscreteUniform(var=["t"], low=1, high=4), sq, batch_like="v")(v=v)
    assert float(estimate.mean()) == pytest.approx(float(exact.mean()), rel=0.02)  # Σ k⁴ = 354


def test_terms_print_as_formulas() -> None:
    sq = SquaredError(_predictor())
    assert str(SumOver("t", range(2, 1001), sq, batch_like="v")) == "sum_{t=2}^{1000}[||v - E_{p(v|t)}[v]||^2]"
    assert SumOver("t", [1, 5], sq).to_latex().startswith(r"\sum_{t \in \{1, 5\}}")
    assert sq.to_latex() == r"\left\|v - \mathbb{E}_{p(v|t)}\left[v\right]\right\|^2"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ObjectiveError, match="at least one value"):
        SumOver("t", [], 1.0)
    from deepgm.distributions import Bernoulli

    with pytest.raises(ObjectiveError, match="'loc' parameter"):
        SquaredError(Bernoulli(var=["x"], probs=0.5))
