"""Preprocessing for flows on images: uniform dequantisation and the logit transform, with their
log-determinants, so that likelihoods are reported for the original data (bits/dim).

This is the one home of both (the data loaders only binarise): put them first in a flow's transforms.

>>> x = torch.tensor([[0.0, 128 / 255, 1.0]])
>>> y, log_det = Dequantize(256, "midpoint").eval()(x)
>>> (y * 256).tolist(), round(float(log_det), 4)
([[0.5, 128.5, 255.5]], -16.6355)
>>> z, ld = Logit(0.05)(y)
>>> torch.allclose(Logit(0.05).inverse(z)[0], y)
True
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from deepgm.flows.base import Transform, sum_except_batch

__all__ = ["Dequantize", "Logit", "bits_per_dim"]


class Dequantize(Transform):
    """Uniform dequantisation of data on ``L = levels`` values ``k/(L-1)`` in ``[0, 1]``:
    ``y = (k + v)/L`` with ``v ~ U[0, 1)``. In eval mode ``eval_noise`` decides: ``uniform`` (default) draws
    ``v`` as in training, so a test log-likelihood is the usual single-draw estimate of the bound below (the
    figure papers report as bits/dim); ``midpoint`` takes ``v = ½`` (deterministic, e.g. for inpainting).

    Its log-determinant is ``-D log L``: with it, ``log p(y) - D log L`` lower-bounds (in expectation over
    ``v``) the log-probability of the discrete data, ``log P(k) ≥ E_v[log p((k+v)/L)] - D log L``, so a flow
    preceded by ``Dequantize`` gives bounds on the discrete likelihood (not a Jacobian: it is not a
    bijection). The inverse rounds ``y`` back to the grid. The rounding passes gradients straight through,
    so a likelihood can be optimised over the data (inpainting).
    """

    def __init__(self, levels: int = 256, eval_noise: Literal["uniform", "midpoint"] = "uniform") -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"Dequantize: needs at least 2 levels, got {levels}")
        if eval_noise not in ("uniform", "midpoint"):
            raise ValueError(f"Dequantize: eval_noise must be 'uniform' or 'midpoint', got {eval_noise!r}")
        self.levels = levels
        self.eval_noise = eval_noise

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scaled = x * (self.levels - 1)
        k = scaled + (torch.round(scaled) - scaled).detach()  # rounded; gradients pass straight through
        uniform = self.training or self.eval_noise == "uniform"
        v = torch.rand_like(x) if uniform else torch.full_like(x, 0.5)
        y = (k + v) / self.levels
        # (L - 1 + v) / L rounds up to exactly 1 in float32 for v close to 1: keep y strictly inside its bin
        # (so that a Logit with alpha = 0 stays finite), passing gradients straight through as above.
        y = y + (y.clamp(max=1.0 - torch.finfo(y.dtype).eps) - y).detach()
        d = x[0].numel()
        return y, x.new_full((x.shape[0],), -d * math.log(self.levels))

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.floor(y * self.levels).clamp(0, self.levels - 1)
        d = y[0].numel()
        return k / (self.levels - 1), y.new_full((y.shape[0],), d * math.log(self.levels))


class Logit(Transform):
    """``y = logit(α + (1 - 2α) x)`` for ``x ∈ [0, 1]``:
    ``log|det J| = Σ [log(1 - 2α) - log p - log(1 - p)]`` with ``p = α + (1-2α)x`` (RealNVP uses α = 0.05)."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"Logit: alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def _ld(self, p: torch.Tensor) -> torch.Tensor:
        return sum_except_batch(math.log1p(-2 * self.alpha) - torch.log(p) - torch.log1p(-p))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * x
        return torch.log(p) - torch.log1p(-p), self._ld(p)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.sigmoid(y)
        return (p - self.alpha) / (1 - 2 * self.alpha), -self._ld(p)


def bits_per_dim(nll_nats: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """``NLL / (D ln 2)``: a negative log-likelihood in nats per example as bits per dimension."""
    return nll_nats / (dims * math.log(2))
