"""Maximum mean discrepancy between two distributions over the same variables."""

from __future__ import annotations

from typing import Any, Literal

import torch

from deepgm.distributions.base import Distribution
from deepgm.distributions.env import Env
from deepgm.errors import ObjectiveError
from deepgm.losses.core import _check_dist
from deepgm.losses.expr import Loss

__all__ = ["MMD", "mmd2_unbiased", "gaussian_kernel", "imq_kernel"]


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)


def gaussian_kernel(d2: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``k(x, y) = exp(-||x-y||² / (2 h²))`` from squared distances."""
    return torch.exp(-d2 / (2 * bandwidth**2))


def imq_kernel(d2: torch.Tensor, scale: float) -> torch.Tensor:
    """The inverse multiquadric ``k(x, y) = C / (C + ||x-y||²)`` with ``C = scale``."""
    return scale / (scale + d2)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, kernel: Literal["gaussian", "imq"] = "gaussian",
                  bandwidth: float | None = None) -> torch.Tensor:
    """The unbiased estimate of ``MMD² = E k(x,x') + E k(y,y') - 2 E k(x,y)`` from ``x (n, D)`` and
    ``y (m, D)``: the within-sample means leave out the diagonal, ``1/(n(n-1)) Σ_{i≠j}``.

    ``bandwidth``: the Gaussian ``h`` (default: the median heuristic, ``h² = median ||·||² / 2`` over the
    pooled samples), or the IMQ ``C`` (default ``2 D``).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ObjectiveError(f"MMD: samples must be (n, D) and (m, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ObjectiveError(f"MMD: needs at least 2 samples from each side, got {n} and {m}")
    dxx, dyy, dxy = _sq_dists(x, x), _sq_dists(y, y), _sq_dists(x, y)
    if kernel == "gaussian":
        if bandwidth is None:
            pooled = torch.cat([dxx.flatten(), dyy.flatten(), dxy.flatten()]).detach()
            bandwidth = float((pooled.median() / 2).clamp_min(1e-12).sqrt())
        kxx, kyy, kxy = (gaussian_kernel(d, bandwidth) for d in (dxx, dyy, dxy))
    elif kernel == "imq":
        c = 2.0 * x.shape[1] if bandwidth is None else bandwidth
        kxx, kyy, kxy = (imq_kernel(d, c) for d in (dxx, dyy, dxy))
    else:
        raise ObjectiveError(f"MMD: kernel must be 'gaussian' or 'imq', got {kernel!r}")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2 * kxy.mean()


class MMD(Loss):
    """``MMD²[p, q]`` between draws of the same variables from ``p`` and ``q`` (e.g. the aggregate
    posterior ``q(z|x)`` over a batch against the prior ``p(z)``), unbiased, a scalar.

    The draws are flattened to one row per data point. A distribution without conditions draws as many
    points as the other one has (or ``batch_n``).
    """

    def __init__(self, p: Distribution, q: Distribution, kernel: Literal["gaussian", "imq"] = "gaussian",
                 bandwidth: float | None = None, batch_n: int | None = None) -> None:
        self.p, self.q = _check_dist(p, "MMD"), _check_dist(q, "MMD")
        if sorted(p.var) != sorted(q.var):
            raise ObjectiveError(f"MMD({p.prob_text}, {q.prob_text}): both must be over the same variables")
        if kernel not in ("gaussian", "imq"):
            raise ObjectiveError(f"MMD: kernel must be 'gaussian' or 'imq', got {kernel!r}")
        self.kernel, self.bandwidth, self.batch_n = kernel, bandwidth, batch_n

    def _draw(self, d: Distribution, env: Env, batch_n: int | None) -> torch.Tensor:
        scope = env.child()
        d.draw_into(scope, (), batch_n, True)
        parts = [scope.values[v] for v in d.var]
        lead = parts[0].shape[0] if parts[0].dim() else 1
        return torch.cat([t.reshape(lead, -1) for t in parts], dim=1)

    def _eval(self, env: Env) -> Any:
        first, second = (self.q, self.p) if self.q.cond_var or not self.p.cond_var else (self.p, self.q)
        a = self._draw(first, env, self.batch_n)
        b = self._draw(second, env, self.batch_n or a.shape[0])
        x, y = (b, a) if first is self.q else (a, b)
        return mmd2_unbiased(x, y, self.kernel, self.bandwidth)

    def own_distributions(self) -> tuple[Distribution, ...]:
        return (self.p, self.q)

    def own_drawn(self) -> tuple[str, ...]:
        return tuple(self.p.var)

    def own_inputs(self) -> tuple[str, ...]:
        return tuple(self.p.cond_var + self.q.cond_var)

    def _render(self, latex: bool) -> str:
        a, b = self.p.prob_text, self.q.prob_text
        return rf"\mathrm{{MMD}}^2\left[{a}, {b}\right]" if latex else f"MMD^2[{a}, {b}]"
