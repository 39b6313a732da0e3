"""Planar and radial flows (Rezende & Mohamed 2015), optionally amortised: with ``context_dim > 0`` their
parameters are a linear function of the context (e.g. of ``x`` in a posterior ``q(z|x)``).

>>> import torch
>>> _ = torch.manual_seed(0)
>>> f = PlanarFlow(2)
>>> z = torch.randn(1, 2)
>>> y, logdet = f(z)
>>> J = torch.autograd.functional.jacobian(lambda v: f(v)[0], z)[0, :, 0]
>>> torch.allclose(logdet, torch.linalg.slogdet(J)[1], atol=1e-5)
True
>>> f.inverse(y)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
deepgm.flows.base.NotInvertibleError: PlanarFlow has no closed-form inverse; ...
>>> g = RadialFlow(2)  # closed-form inverse
>>> torch.allclose(g.inverse(g(z)[0])[0], z, atol=1e-5)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError
from deepgm.flows.base import NotInvertibleError, Transform, _check_context

__all__ = ["PlanarFlow", "RadialFlow"]


class _Amortised(Transform):
    """Parameters either learnt directly or given per example by ``Linear(context)``."""

    def __init__(self, dim: int, n_params: int, context_dim: int) -> None:
        super().__init__()
        self.dim, self.context_dim = dim, context_dim
        if context_dim:
            self.hyper: nn.Linear | None = nn.Linear(context_dim, n_params)
            nn.init.normal_(self.hyper.weight, std=0.01)
            nn.init.normal_(self.hyper.bias, std=0.1)
            self.theta = None
        else:
            self.hyper = None
            self.theta = nn.Parameter(torch.randn(n_params) * 0.1)

    def _theta(self, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ShapeError(f"{type(self).__name__}: expected inputs (N, {self.dim}), got {tuple(z.shape)}")
        _check_context(type(self).__name__, context, self.context_dim, z.shape[0])
        if self.hyper is not None:
            out: torch.Tensor = self.hyper(context)
            return out
        assert self.theta is not None
        return self.theta.expand(z.shape[0], -1)


class PlanarFlow(_Amortised):
    """``f(z) = z + û tanh(wᵀz + b)``, ``log|det J| = log|1 + tanh'(wᵀz + b) ûᵀw|`` with
    ``û = u + (m(wᵀu) - wᵀu) w/‖w‖²``, ``m(a) = -1 + softplus(a)``, so ``ûᵀw > -1`` and ``f`` is invertible.

    It has no closed-form inverse: ``inverse`` raises :class:`NotInvertibleError`. In a posterior it runs
    in the sampling direction, i.e. wrapped as ``Inverse(PlanarFlow(...))`` (see ``flows.posterior``).
    """

    def __init__(self, dim: int, context_dim: int = 0) -> None:
        super().__init__(dim, 2 * dim + 1, context_dim)

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        th = self._theta(z, context)
        d = self.dim
        u, w, b = th[:, :d], th[:, d:2 * d], th[:, 2 * d]
        wu = (w * u).sum(-1, keepdim=True)
        u_hat = u + (F.softplus(wu) - 1 - wu) * w / (w * w).sum(-1, keepdim=True).clamp(min=1e-12)
        a = (w * z).sum(-1) + b
        h = torch.tanh(a)
        y = z + u_hat * h[:, None]
        det = 1 + (1 - h * h) * (u_hat * w).sum(-1)
        return y, torch.log(det.abs() + 1e-12)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotInvertibleError(
            "PlanarFlow has no closed-form inverse; use it in one direction only, e.g. as Inverse(PlanarFlow(...)) "
            "in a Flow that is sampled (a posterior q(z|x)) and scores its own samples"
        )


class RadialFlow(_Amortised):
    """``f(z) = z + β h(r)(z - z₀)``, ``h = 1/(α + r)``, ``r = ‖z - z₀‖``, ``α = softplus(α̂)``,
    ``β = -α + softplus(β̂)``: ``log|det J| = (D-1) log(1 + βh) + log(1 + βh - βr/(α+r)²)``.
    Its inverse is closed form: ``r`` solves ``r + βr/(α + r) = ‖y - z₀‖`` (a quadratic)."""

    def __init__(self, dim: int, context_dim: int = 0) -> None:
        super().__init__(dim, dim + 2, context_dim)

    def _split(self, z: torch.Tensor, context: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        th = self._theta(z, context)
        z0 = th[:, : self.dim]
        alpha = F.softplus(th[:, self.dim])
        beta = -alpha + F.softplus(th[:, self.dim + 1])
        return z0, alpha, beta

    def _logdet(self, r: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        h = 1 / (alpha + r)
        return (self.dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * h - beta * r * h * h)

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z0, alpha, beta = self._split(z, context)
        diff = z - z0
        r = diff.norm(dim=-1)
        y = z + (beta / (alpha + r))[:, None] * diff
        return y, self._logdet(r, alpha, beta)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z0, alpha, beta = self._split(y, context)
        diff = y - z0
        rp = diff.norm(dim=-1)
        bq = alpha + beta - rp
        r = 0.5 * (-bq + torch.sqrt(bq * bq + 4 * alpha * rp))
        z = z0 + diff * (r / rp.clamp(min=1e-12))[:, None]
        return z, -self._logdet(r, alpha, beta)
