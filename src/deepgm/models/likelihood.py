"""Importance-sampled estimates of the marginal log-likelihood."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError

__all__ = ["log_likelihood"]


@torch.no_grad()
def log_likelihood(p: Distribution, q: Distribution, inputs: Mapping[str, Any], k: int = 5000,
                   chunk: int = 500) -> torch.Tensor:
    """``log p(x) ≈ log (1/k) Σ_k p(x,z_k)/q(z_k|x)``, ``z_k ~ q(z|x)``, per data point.

    The ``k`` draws are taken ``chunk`` at a time and combined by a running log-sum-exp, so memory is
    bounded by ``chunk``. ``p`` is the joint ``p(x,z)``; ``q`` the proposal (usually the encoder).
    """
    if k < 1 or chunk < 1:
        raise ObjectiveError(f"log_likelihood: k and chunk must be positive, got k={k}, chunk={chunk}")
    missing = [v for v in q.var if v not in p.var]
    if missing:
        raise ObjectiveError(f"log_likelihood: p must be the joint over the data and {q.var}; "
                             f"{p.prob_text} lacks {missing}")
    env = Env(inputs)
    total: torch.Tensor | None = None
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        scope = env.child()
        scope.salt = start + 1
        q.draw_into(scope, (n,), None, False)
        part = (p.log_prob_at(scope) - q.log_prob_at(scope)).logsumexp(0)
        total = part if total is None else torch.logaddexp(total, part)
    assert total is not None
    return total - math.log(k)
