"""The monotone rational-quadratic spline of Durkan et al. (2019), with identity (linear) tails.

>>> import torch
>>> x = torch.linspace(-4, 4, 5)  # the ends lie outside [-3, 3]: the identity tails
>>> y, logdet = rq_spline(x, torch.zeros(5, 8), torch.zeros(5, 8), torch.zeros(5, 7))  # zero parameters
>>> torch.allclose(y, x), torch.allclose(logdet, torch.zeros(5), atol=1e-6)
(True, True)
>>> _ = torch.manual_seed(0)
>>> w, h, d = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 7)
>>> y, logdet = rq_spline(x, w, h, d)
>>> x_back, inverse_logdet = rq_spline(y, w, h, d, inverse=True)
>>> torch.allclose(x_back, x, atol=1e-5), torch.allclose(inverse_logdet, -logdet, atol=1e-5)
(True, True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["rq_spline"]


def _knots(unnormalised: torch.Tensor, bound: float, minimum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes (softmax, each at least ``minimum`` of the range) and the ``K+1`` knot positions on
    ``[-bound, bound]``."""
    k = unnormalised.shape[-1]
    frac = minimum + (1 - minimum * k) * torch.softmax(unnormalised, -1)
    cum = F.pad(torch.cumsum(frac, -1), (1, 0))
    knots = 2 * bound * cum - bound
    knots = torch.cat([torch.full_like(knots[..., :1], -bound), knots[..., 1:-1],
                       torch.full_like(knots[..., :1], bound)], -1)
    return knots[..., 1:] - knots[..., :-1], knots


def rq_spline(x: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor,
              bound: float = 3.0, inverse: bool = False, min_bin: float = 1e-3, min_derivative: float = 1e-3
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline (or its inverse) elementwise, and ``log|dy/dx|`` elementwise (of the map applied).

    ``widths``, ``heights``: ``(..., K)`` unnormalised bin sizes; ``derivatives``: ``(..., K-1)``
    unnormalised interior knot slopes (the end slopes are 1, matching the identity tails; zero
    parameters give the identity). In bin ``k`` with ``ξ = (x - x_k)/w_k`` and ``s = h_k/w_k``,
    ``y = y_k + h_k (s ξ² + δ_k ξ(1-ξ)) / (s + (δ_{k+1} + δ_k - 2s) ξ(1-ξ))``; the inverse solves
    the quadratic for ξ.
    """
    w, xk_all = _knots(widths, bound, min_bin)
    h, yk_all = _knots(heights, bound, min_bin)
    shift = math.log(math.expm1(1 - min_derivative))  # softplus(0 + shift) + min = 1: identity at zero
    d = min_derivative + F.softplus(derivatives + shift)
    one = torch.ones_like(d[..., :1])
    d = torch.cat([one, d, one], -1)
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    edges = (yk_all if inverse else xk_all)[..., 1:]
    idx = (xc[..., None] >= edges).sum(-1, keepdim=True).clamp(max=w.shape[-1] - 1)
    xk, yk = xk_all.gather(-1, idx)[..., 0], yk_all.gather(-1, idx)[..., 0]
    wk, hk = w.gather(-1, idx)[..., 0], h.gather(-1, idx)[..., 0]
    dk, dk1 = d.gather(-1, idx)[..., 0], d.gather(-1, idx + 1)[..., 0]
    s = hk / wk
    c = dk1 + dk - 2 * s
    if inverse:
        dy = xc - yk
        a = hk * (s - dk) + dy * c
        b = hk * dk - dy * c
        cc = -s * dy
        disc = (b * b - 4 * a * cc).clamp(min=0)
        xi = (2 * cc) / (-b - torch.sqrt(disc))
        out = xk + xi * wk
    else:
        xi = (xc - xk) / wk
        out = yk + hk * (s * xi**2 + dk * xi * (1 - xi)) / (s + c * xi * (1 - xi))
    xi = xi.clamp(0, 1)
    den = s + c * xi * (1 - xi)
    deriv = s**2 * (dk1 * xi**2 + 2 * s * xi * (1 - xi) + dk * (1 - xi) ** 2) / den**2
    ld = torch.log(deriv)
    if inverse:
        ld = -ld
    return torch.where(inside, out, x), torch.where(inside, ld, torch.zeros_like(ld))
