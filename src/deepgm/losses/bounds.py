"""Variational bounds on ``log p(x)``: the ELBO, the importance-weighted bound and the Rényi bound.

With the exact posterior every importance weight equals ``p(x)``, so each bound is ``log p(x)`` itself,
whatever the draws: here ``z ~ N(0, 1)``, ``x|z ~ N(z, 1)``, so ``p(z|x) = N(x/2, ½)`` and
``log p(x) = log N(x; 0, 2) = -½ log 4π - x²/4``.

>>> import math, torch
>>> from deepgm.distributions import Normal
>>> prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[1])
>>> p = Normal(var=["x"], cond_var=["z"], loc="z", scale=1.0) * prior
>>> class Posterior(torch.nn.Module):
...     def forward(self, x):
...         return {"loc": x / 2, "scale": torch.full_like(x, math.sqrt(0.5))}
>>> q = Normal(var=["z"], cond_var=["x"], net=Posterior(), name="q")
>>> x = torch.tensor([[0.0], [2.0]])
>>> -0.5 * math.log(4 * math.pi) - x[:, 0] ** 2 / 4
tensor([-1.2655, -2.2655])
>>> ELBO(p, q)(x=x), IWELBO(p, q, k=8)(x=x), RenyiBound(p, q, k=8, alpha=0.5)(x=x)
(tensor([-1.2655, -2.2655]), tensor([-1.2655, -2.2655]), tensor([-1.2655, -2.2655]))
>>> str(IWELBO(p, q, k=8))
'L_8[p(x,z), q(z|x)]'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import E, LogProb, _check_dist
from deepgm.losses.expr import Loss

__all__ = ["ELBO", "IWELBO", "RenyiBound"]


def ELBO(p: Distribution, q: Distribution, sample_shape: int | Sequence[int] = ()) -> Loss:  # noqa: N802
    """``ELBO = E_{q(z|x)}[log p(x,z) - log q(z|x)] ≤ log p(x)``, per data point."""
    return E(q, LogProb(p) - LogProb(q), sample_shape=sample_shape)


def _check_pair(p: Distribution, q: Distribution, where: str) -> None:
    _check_dist(p, where)
    _check_dist(q, where)
    missing = [v for v in q.var if v not in p.var]
    if missing:
        raise ObjectiveError(f"{where}: p must be the joint over the data and {q.var}; "
                             f"{p.prob_text} lacks {missing}")


class _WeightedBound(Loss):
    """Shared by the bounds that draw ``k`` samples from ``q`` and weigh ``w_k = p(x,z_k)/q(z_k|x)``."""

    symbol = "L"

    def __init__(self, p: Distribution, q: Distribution, k: int) -> None:
        _check_pair(p, q, type(self).__name__)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ObjectiveError(f"{type(self).__name__}: k must be a positive int, got {k!r}")
        self.p, self.q, self.k = p, q, k

    def _log_weights(self, env: Env, detach_q: bool = False) -> tuple[Env, torch.Tensor]:
        scope = env.child()
        self.q.draw_into(scope, (self.k,), None, True)
        return scope, self.p.log_prob_at(scope) - self.q.log_prob_at(scope, detach_q)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.q.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.var + self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        args = f"{self.p.prob_text}, {self.q.prob_text}"
        if latex:
            return rf"\mathcal{{{self.symbol}}}_{{{self.k}}}\left[{args}\right]"
        return f"{self.symbol}_{self.k}[{args}]"


class IWELBO(_WeightedBound):
    """The importance-weighted bound (Burda et al.), per data point:
    ``L_k = E[log (1/k) Σ_k p(x,z_k)/q(z_k|x)]``, ``z_1..z_k ~ q(z|x)``; ``L_1`` is the ELBO and ``L_k``
    rises to ``log p(x)`` as ``k`` grows.

    ``estimator="dreg"`` keeps the value and replaces the gradient with the doubly-reparameterised one
    (Tucker et al. 2018): ``q``'s parameters receive ``Σ_k w̃_k² ∂ log w_k/∂z_k ∂z_k/∂φ`` (normalised
    weights ``w̃``), removing the high-variance score term; ``p``'s receive the usual ``Σ_k w̃_k ∇ log w_k``.
    DReG needs ``q``'s factors to be conditioned on observed variables only (one stochastic layer).
    """

    symbol = "L"

    def __init__(self, p: Distribution, q: Distribution, k: int,
                 estimator: Literal["plain", "dreg"] = "plain") -> None:
        super().__init__(p, q, k)
        if estimator not in ("plain", "dreg"):
            raise ObjectiveError(f"IWELBO: estimator must be 'plain' or 'dreg', got {estimator!r}")
        if estimator == "dreg":
            inner = [c for f in q.factors() for c in f.cond_var if c in q.var]
            if inner:
                raise ObjectiveError(f"IWELBO(estimator='dreg'): {q.prob_text} conditions on its own latent "
                                     f"{inner}; DReG here supports one stochastic layer")
        self.estimator = estimator

    def _eval(self, env: Env) -> Any:
        if self.estimator == "plain":
            _, log_w = self._log_weights(env)
            return log_w.logsumexp(0) - math.log(self.k)
        scope = env.child()
        scope.salt = id(self)  # draws of its own: the gradient hooks below must not reach other terms
        self.q.draw_into(scope, (self.k,), None, True)
        holder: dict[str, torch.Tensor] = {}
        for v in self.q.var:
            z = scope.values[v]
            alias = z.view_as(z)
            if alias.requires_grad:
                ne = alias.dim() - 2  # (k, B, event...)
                alias.register_hook(lambda g, ne=ne: g * holder["w"].reshape(holder["w"].shape + (1,) * ne))
            scope.set(v, alias, scope.sdims.get(v, 0))
        log_w = self.p.log_prob_at(scope) - self.q.log_prob_at(scope, detach_params=True)
        w = log_w.detach().softmax(0)
        holder["w"] = w
        value = log_w.logsumexp(0) - math.log(self.k)
        surrogate = (w * log_w).sum(0)
        return value.detach() + surrogate - surrogate.detach()


class RenyiBound(_WeightedBound):
    """The variational Rényi bound (Li & Turner 2016), per data point:
    ``L_α = 1/(1-α) log (1/k) Σ_k w_k^{1-α}``: ``α=0`` is the IWELBO, ``α→1`` the ELBO."""

    symbol = "R"

    def __init__(self, p: Distribution, q: Distribution, k: int, alpha: float = 0.5) -> None:
        super().__init__(p, q, k)
        if not math.isfinite(float(alpha)):
            raise ObjectiveError(f"RenyiBound: alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def _eval(self, env: Env) -> Any:
        _, log_w = self._log_weights(env)
        if abs(1.0 - self.alpha) < 1e-8:
            return log_w.mean(0)
        a = 1.0 - self.alpha
        return ((a * log_w).logsumexp(0) - math.log(self.k)) / a

    def _render(self, latex: bool) -> str:
        base = super()._render(latex)
        return base.replace(f"_{{{self.k}}}", f"_{{\\alpha={self.alpha:g}, {self.k}}}") if latex else \
            f"R_{self.alpha:g},{self.k}[{self.p.prob_text}, {self.q.prob_text}]"
