"""Normalisation layers as flows: batch normalisation (Dinh et al. 2017) and ActNorm (Kingma & Dhariwal 2018).

Both act per feature of a vector ``(N, D)`` or per channel of an image ``(N, C, H, W)``; on images the
log-determinant counts every pixel (``× H W``).

>>> import torch
>>> _ = torch.manual_seed(0)
>>> norm = ActNorm(3)
>>> y, logdet = norm(5 + 2 * torch.randn(100, 3))  # the first batch in training mode sets b and s
>>> bool(y.mean(0).abs().max() < 1e-5), torch.allclose(y.std(0), torch.ones(3)), logdet.shape
(True, True, torch.Size([100]))
>>> img = torch.randn(2, 3, 4, 4)
>>> torch.allclose(norm(img)[1], norm.log_scale.sum() * 16)  # Σ s once per pixel
True
"""

from __future__ import annotations

import torch
from torch import nn

from deepgm.flows.base import Transform

__all__ = ["BatchNormFlow", "ActNorm"]


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape((1, -1) + (1,) * (x.dim() - 2))


def _pixels(x: torch.Tensor) -> int:
    n = 1
    for s in x.shape[2:]:
        n *= s
    return n


class BatchNormFlow(Transform):
    """``y = (x - μ)/√(σ² + ε) ⊙ exp(log γ) + β``: batch statistics while training (kept as running
    averages with ``momentum``), the running ones in eval mode and for the inverse;
    ``log|det J| = Σ (log γ - ½ log(σ² + ε))`` (treating the statistics as constants)."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.log_gamma = nn.Parameter(torch.zeros(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))
        self.momentum, self.eps = momentum, eps

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and x.shape[0] > 1:
            dims = [0] + list(range(2, x.dim()))
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            return mean, var
        return self.running_mean, self.running_var

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = self._stats(x)
        y = (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + self.eps)
        y = y * _per_channel(torch.exp(self.log_gamma), x) + _per_channel(self.beta, x)
        ld = (self.log_gamma - 0.5 * torch.log(var + self.eps)).sum() * _pixels(x)
        return y, ld.expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = self.running_mean, self.running_var
        x = (y - _per_channel(self.beta, y)) * _per_channel(torch.exp(-self.log_gamma), y)
        x = x * torch.sqrt(_per_channel(var, y) + self.eps) + _per_channel(mean, y)
        ld = -(self.log_gamma - 0.5 * torch.log(var + self.eps)).sum() * _pixels(y)
        return x, ld.expand(y.shape[0])


class ActNorm(Transform):
    """``y = (x + b) ⊙ exp(s)``, ``log|det J| = H W Σ s``; ``b`` and ``s`` are initialised from the first
    batch seen in training mode so that ``y`` has zero mean and unit variance per channel."""

    initialized: torch.Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        dims = [0] + list(range(2, x.dim()))
        self.bias.copy_(-x.mean(dims))
        std = x.std(dims) if x.shape[0] > 1 else torch.ones_like(self.bias)
        self.log_scale.copy_(-torch.log(std.clamp(min=1e-6)))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self._init(x)
        y = (x + _per_channel(self.bias, x)) * _per_channel(torch.exp(self.log_scale), x)
        return y, (self.log_scale.sum() * _pixels(x)).expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = y * _per_channel(torch.exp(-self.log_scale), y) - _per_channel(self.bias, y)
        return x, (-self.log_scale.sum() * _pixels(y)).expand(y.shape[0])
