"""The density-ratio trick: a classifier trained by logistic regression to tell draws of ``p`` (label 1)
from draws of ``q`` (label 0) has, at its optimum, logit ``T(x) = log p(x)/q(x)``.

:class:`DensityRatio` is the estimate ``T(x)`` at draws of ``p`` (so ``DensityRatio(...).mean()`` estimates
``D_KL[p||q]``); its :meth:`~DensityRatio.discriminator_loss` is the logistic loss that trains ``T``,
with its own optimiser (:class:`deepgm.models.AuxiliaryObjective`). FactorVAE's total correlation is
``DensityRatio(q, T, permute_dims=True)``: ``q(z)`` against the product of its marginals, whose draws
are ``q``'s draws with every dimension shuffled independently across the batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import _check_dist
from deepgm.losses.expr import Loss

__all__ = ["DensityRatio", "permute_dims"]


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle every feature of ``z (B, D)`` independently across the batch: draws of ``Π_d q(z_d)``."""
    b = z.shape[0]
    flat = z.reshape(b, -1)
    idx = torch.argsort(torch.rand(flat.shape, generator=generator, device=z.device), dim=0)
    return flat.gather(0, idx).reshape(z.shape)


class DensityRatio(Loss):
    """``T(x) = log p(x)/q(x)`` at ``x ~ p`` as estimated by the classifier ``discriminator`` (a module
    mapping the variables' values, concatenated, to one logit per example). ``q`` is a distribution over
    the same variables, or the product of ``p``'s marginals (``permute_dims=True``)."""

    def __init__(self, p: Distribution, discriminator: nn.Module, q: Distribution | None = None,
                 permute_dims: bool = False) -> None:
        self.p = _check_dist(p, "DensityRatio")
        if (q is None) == (not permute_dims):
            raise ObjectiveError("DensityRatio: give either q or permute_dims=True")
        if q is not None and sorted(_check_dist(q, "DensityRatio").var) != sorted(p.var):
            raise ObjectiveError(f"DensityRatio({p.prob_text}, {q.prob_text}): both must be over the same variables")
        self.q, self.permute = q, permute_dims
        self.discriminator = discriminator

    def _draw(self, d: Distribution, env: Env, batch_n: int | None = None) -> torch.Tensor:
        scope = env.child()
        d.draw_into(scope, (), batch_n, True)
        parts = [scope.values[v] for v in d.var]
        return torch.cat([t.reshape(t.shape[0], -1) for t in parts], dim=1)

    def _logit(self, x: torch.Tensor) -> torch.Tensor:
        out = self.discriminator(x)
        return out.reshape(out.shape[0])

    def _eval(self, env: Env) -> Any:
        return self._logit(self._draw(self.p, env))

    def _reference(self, env: Env, like: torch.Tensor) -> torch.Tensor:
        if self.permute:
            return permute_dims(like)
        assert self.q is not None
        return self._draw(self.q, env, like.shape[0])

    def discriminator_loss(self) -> Loss:
        """The logistic loss ``-mean(log σ(T(x_p))) - mean(log(1 - σ(T(x_q))))`` on detached draws."""
        return _LogisticLoss(self)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p,) + ((self.q,) if self.q is not None else ())

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.p.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + (self.q.cond_var if self.q is not None else []))

    def _render(self, latex: bool) -> str:
        ref = r"\prod_j " + self.p.prob_text if self.permute else (self.q.prob_text if self.q else "")
        if latex:
            return rf"\log \frac{{{self.p.prob_text}}}{{{ref}}}"
        return f"log[{self.p.prob_text} / {ref.replace(chr(92), '')}]"


class _LogisticLoss(Loss):
    def __init__(self, ratio: DensityRatio) -> None:
        self.ratio = ratio

    def _eval(self, env: Env) -> Any:
        r = self.ratio
        a = r._draw(r.p, env).detach()
        b = r._reference(env, a).detach()
        la, lb = r._logit(a), r._logit(b)
        return F.binary_cross_entropy_with_logits(la, torch.ones_like(la)) + \
            F.binary_cross_entropy_with_logits(lb, torch.zeros_like(lb))

    def own_distributions(self) -> tuple[Distribution, ...]:
        return self.ratio.own_distributions()

    def own_modules(self) -> tuple[nn.Module, ...]:
        return (self.ratio.discriminator,)

    def _render(self, latex: bool) -> str:
        inner = self.ratio._render(latex)
        return rf"\mathrm{{BCE}}\left[{inner}\right]" if latex else f"BCE[{inner}]"
