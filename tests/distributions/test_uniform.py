"""The discrete uniform time variable: draws cover its range evenly with one row per data point, its
log-probability is -log K inside the range and -inf outside, and one evaluation shares one draw."""

from __future__ import annotations

import math

import pytest
import torch

from deepgm.distributions import DiscreteUniform
from deepgm.errors import ParameterError, ShapeError
from deepgm.losses import BatchE, Loss


def test_draws_cover_the_range_evenly() -> None:
    torch.manual_seed(0)
    t = DiscreteUniform(var=["t"], low=2, high=6).sample(batch_n=50000)["t"]
    assert t.shape == (50000, 1) and t.dtype == torch.long
    freq = torch.bincount(t.flatten(), minlength=7)[2:].float() / 50000
    assert int(t.min()) == 2 and int(t.max()) == 6 and torch.allclose(freq, torch.full((5,), 0.2), atol=0.01)


def test_log_prob_is_minus_log_k_inside_and_minus_inf_outside() -> None:
    q = DiscreteUniform(var=["t"], low=1, high=10)
    lp = q.log_prob({"t": torch.tensor([[1], [10], [0], [11]])})
    assert lp[:2].tolist() == pytest.approx([-math.log(10)] * 2) and lp[2:].tolist() == [-math.inf] * 2
    with pytest.raises(ShapeError, match=r"event shape \(1,\)"):
        q.log_prob({"t": torch.tensor([[1, 2]])})


class _Read(Loss):
    def _eval(self, env):  # type: ignore[no-untyped-def]
        return env.values["t"].float().flatten()

    def _render(self, latex: bool) -> str:
        return "t"


def test_one_evaluation_shares_one_draw_per_row_and_independent_draws_differ() -> None:
    torch.manual_seed(0)
    q = DiscreteUniform(var=["t"], low=1, high=1000)
    f = BatchE(q, _Read(), batch_like="x")
    x = torch.zeros(64, 2)
    assert torch.equal((f - f)(x=x), torch.zeros(64))
    assert not torch.equal(f(x=x), f(x=x))  # a new evaluation draws afresh


def test_refuses_an_empty_range() -> None:
    with pytest.raises(ParameterError, match="high must be >= low"):
        DiscreteUniform(var=["t"], low=5, high=4)
