"""Defects of the basic terms found on the way: CrossEntropy's unused analytic terms in Monte Carlo mode,
IterativeLoss's "did not draw or compute" check after the first step, and KL's choice of a closed form."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributions as td

import deepgm.losses.core as core
from deepgm.distributions import Deterministic, Env, FromTorch, MixtureOfNormal, Normal, RelaxedBernoulli
from deepgm.errors import ObjectiveError
from deepgm.losses import KL, CrossEntropy, E, IterativeLoss, Loss, Parameter


class _Never:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("built an analytic term in Monte Carlo mode")


def test_cross_entropy_by_monte_carlo_builds_no_analytic_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "KL", _Never)
    monkeypatch.setattr(core, "Entropy", _Never)
    p = Normal(var=["x"], loc=0.0, scale=1.0, features_shape=[2])
    q = Normal(var=["x"], loc=1.0, scale=2.0, features_shape=[2])
    ce = CrossEntropy(p, q, analytic=False, sample_shape=4)
    assert ce.terms is None
    assert ce({}).shape == ()


@pytest.mark.parametrize(
    "make_p",
    [
        lambda: FromTorch(["x"], fn=lambda: td.Independent(td.StudentT(3.0, torch.zeros(2), torch.ones(2)), 1)),
        lambda: MixtureOfNormal(var=["x"], loc=torch.randn(3, 2)),
    ],
)
def test_cross_entropy_without_a_closed_form_uses_monte_carlo(make_p: Any) -> None:
    p = make_p()
    q = Normal(var=["x"], loc=0.0, scale=2.0, features_shape=[2])
    ce = CrossEntropy(p, q, sample_shape=20_000)
    assert not ce.analytic and ce.terms is None
    torch.manual_seed(1)
    env_value = float(ce({}))
    torch.manual_seed(1)
    x = p.sample({}, sample_shape=20_000)["x"]
    assert abs(env_value - float(-q.log_prob({"x": x}).mean())) < 1e-4
    with pytest.raises(ObjectiveError, match="no analytic form"):
        CrossEntropy(p, q, analytic=True)


def test_kl_of_a_pair_torch_dispatches_but_cannot_compute_uses_monte_carlo() -> None:
    # torch's registry matches two relaxed Bernoullis (transformed distributions) and then raises
    # NotImplementedError: KL(analytic=None) chose that and failed on evaluation; now it estimates
    p = RelaxedBernoulli(var=["x"], probs=torch.full((2,), 0.3))
    q = RelaxedBernoulli(var=["x"], probs=torch.full((2,), 0.6))
    kl = KL(p, q, sample_shape=8)
    assert not kl.analytic and kl.analytic_fn is None
    assert kl({}).shape == ()


class _Value(Parameter):
    """Reads a drawn variable's value as an expression."""


class _FirstStepOnly(Loss):
    """Evaluates ``inner`` at step 0 and nothing at later steps (so later steps draw nothing)."""

    def __init__(self, inner: Loss) -> None:
        self.inner = inner

    def _eval(self, env: Env) -> Any:
        if int(env.get("t", "test")) == 0:
            return self.inner._eval(env)
        return torch.zeros(())

    def children(self) -> tuple[Loss, ...]:
        return (self.inner,)

    def _render(self, latex: bool) -> str:
        return f"first({self.inner._render(latex)})"


def test_iterative_loss_notices_a_later_step_that_did_not_draw_the_update() -> None:
    step = Deterministic(var=["h_new"], cond_var=["h", "x"], loc="x", name="f")
    ok = IterativeLoss(E(step, _Value("h_new").sum()), series_var=["x"], update_value={"h_new": "h"},
                       timestep_var="t")
    xs = torch.randn(3, 2)
    assert torch.allclose(ok({"x": xs, "h": torch.zeros(2)}), xs.sum())
    # step 0 draws h_new; step 1 does not: its h would silently be step 0's value
    bad = IterativeLoss(_FirstStepOnly(E(step, _Value("h_new").sum())), series_var=["x"],
                        update_value={"h_new": "h"}, timestep_var="t")
    with pytest.raises(ObjectiveError, match="step 1 did not draw or compute"):
        bad({"x": xs, "h": torch.zeros(2)})
