"""Objectives refuse options that would average nothing or divide by zero (issue 19), at construction,
and an empty batch at evaluation, each with a named error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from deepgm.distributions import Empirical, Normal
from deepgm.errors import ObjectiveError, ShapeError
from deepgm.losses import (
    ELBO,
    IWELBO,
    KL,
    MMD,
    REINFORCE,
    CrossEntropy,
    E,
    Entropy,
    IterativeLoss,
    LogProb,
    MinimaxGAN,
    MMDMixture,
    RenyiBound,
)


def _models() -> tuple[Normal, Normal, Normal]:
    q = Normal(var=["z"], cond_var=["x"], loc="x", scale=1.0, name="q")
    p = Normal(var=["x"], cond_var=["z"], loc="z", scale=1.0, name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[2], name="prior")
    return q, p, prior


_q, _p, _prior = _models()
_joint = _p * _prior

BAD: list[tuple[str, Callable[[], object], str]] = [
    ("E sample_shape 0", lambda: E(_q, LogProb(_p), sample_shape=0), "E: sample_shape must be >= 1, got 0"),
    ("E sample_shape (2, 0)", lambda: E(_q, LogProb(_p), sample_shape=(2, 0)), "E: sample_shape must be >= 1"),
    ("E sample_shape -3", lambda: E(_q, LogProb(_p), sample_shape=-3), "E: sample_shape must be >= 1, got -3"),
    ("E sample_shape True", lambda: E(_q, LogProb(_p), sample_shape=True), "E: sample_shape must be an int"),
    ("ELBO sample_shape 0", lambda: ELBO(_joint, _q, sample_shape=0), "E: sample_shape must be >= 1"),
    ("KL sample_shape 0", lambda: KL(_q, _prior, analytic=False, sample_shape=0), "KL: sample_shape must be >= 1"),
    ("Entropy sample_shape 0", lambda: Entropy(_q, analytic=False, sample_shape=0), "Entropy: sample_shape"),
    ("CrossEntropy sample_shape 0", lambda: CrossEntropy(_q, _prior, analytic=False, sample_shape=0),
     "CrossEntropy: sample_shape"),
    ("REINFORCE sample_shape 0", lambda: REINFORCE(_q, LogProb(_p), sample_shape=0), "REINFORCE: sample_shape"),
    ("IWELBO k 0", lambda: IWELBO(_joint, _q, k=0), "IWELBO: k must be a positive int, got 0"),
    ("IWELBO k True", lambda: IWELBO(_joint, _q, k=True), "IWELBO: k must be a positive int, got True"),
    ("RenyiBound k 0", lambda: RenyiBound(_joint, _q, k=0), "RenyiBound: k must be a positive int"),
    ("RenyiBound alpha nan", lambda: RenyiBound(_joint, _q, k=2, alpha=float("nan")), "alpha must be a finite"),
    ("MMD batch_n 1", lambda: MMD(_prior, _prior, batch_n=1), "MMD: batch_n must be >= 2, got 1"),
    ("MMD bandwidth 0", lambda: MMD(_prior, _prior, bandwidth=0.0), "MMD: bandwidth must be a positive finite"),
    ("MMDMixture bandwidths ()", lambda: MMDMixture(Empirical(["z"]), _prior, bandwidths=()),
     "give at least one bandwidth"),
    ("MMDMixture bandwidth -1", lambda: MMDMixture(Empirical(["z"]), _prior, bandwidths=(1.0, -1.0)),
     "MMDMixture: bandwidths must be a positive finite number, got -1.0"),
    ("GAN batch_n 0", lambda: MinimaxGAN(Empirical(["z"]), _prior, torch.nn.Linear(2, 1), batch_n=0),
     "MinimaxGAN: batch_n must be >= 1, got 0"),
    ("IterativeLoss max_iter 0", lambda: IterativeLoss(LogProb(_p), max_iter=0),
     "IterativeLoss: max_iter must be >= 1, got 0"),
]


@pytest.mark.parametrize("case, build, message", BAD, ids=[b[0] for b in BAD])
def test_bad_counts_are_refused_at_construction(case: str, build: Callable[[], object], message: str) -> None:
    with pytest.raises(ObjectiveError) as info:
        build()
    assert message in str(info.value)


def test_sample_shape_zero_no_longer_gives_nan() -> None:
    # issue 19: E(..., sample_shape=0) evaluated to NaN; the good shapes keep working
    assert E(_q, LogProb(_p), sample_shape=(2, 3))({"x": torch.randn(4, 2)}).shape == (4,)
    assert E(_q, LogProb(_p), sample_shape=torch.Size([2]))({"x": torch.randn(4, 2)}).shape == (4,)


def test_empty_batch_names_the_objective_and_the_variable() -> None:
    loss = (KL(_q, _prior) - E(_q, LogProb(_p))).mean()
    with pytest.raises(ShapeError) as info:
        loss({"x": torch.randn(0, 2)})
    msg = str(info.value)
    assert "input 'x' has 0 rows" in msg and str(loss) in msg and "nan" not in msg.lower().split("(it")[0]
