"""Layers for discriminators: minibatch discrimination (Salimans et al. 2016)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["MinibatchDiscrimination"]


class _PairwiseL1(torch.autograd.Function):
    """``‖m_i - m_j‖₁`` for ``m (K, B, d)`` → ``(K, B, B)``: ``torch.cdist`` forward, and a backward written
    with differentiable operations, so gradient penalties (double backward) work, which cdist's do not."""

    @staticmethod
    def forward(ctx: Any, m: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(m)
        return torch.cdist(m, m, p=1.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (m,) = ctx.saved_tensors
        sign = torch.sign(m.unsqueeze(2) - m.unsqueeze(1))  # (K, B, B, d)
        return ((grad + grad.transpose(1, 2)).unsqueeze(-1) * sign).sum(2)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016), a cure for mode collapse: ``M_i = x_i T`` (``K``
    kernels of dimension ``d``), ``o_k(x_i) = Σ_{j≠i} exp(-‖M_{i,k} - M_{j,k}‖₁)``; returns
    ``[x, log(1 + o(x))]``, so the discriminator sees how close each example is to the rest of its batch.

    ``log_features`` (default True) passes ``log(1 + o)`` rather than the raw sums, which reach ``B - 1``
    for a collapsed batch and saturate the discriminator: in ``benchmarks/gans.py``'s ring study the raw
    sums made the minimax and non-saturating GANs diverge, the logarithm let NS-GAN cover every mode.

    >>> MinibatchDiscrimination(4, n_kernels=3, kernel_dim=2)(torch.zeros(5, 4)).shape
    torch.Size([5, 7])
    """

    def __init__(self, in_features: int, n_kernels: int = 16, kernel_dim: int = 8, log_features: bool = True) -> None:
        super().__init__()
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)
        self.n_kernels, self.kernel_dim, self.log_features = n_kernels, kernel_dim, log_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).reshape(x.shape[0], self.n_kernels, self.kernel_dim).transpose(0, 1)  # (K, B, d)
        # (K, B, B); the (K, B, B, d) differences only in the backward pass
        l1: torch.Tensor = _PairwiseL1.apply(m)  # type: ignore[no-untyped-call]
        o = torch.exp(-l1).sum(-1).t() - 1.0  # leave out j = i (exp(0) = 1)
        return torch.cat([x, torch.log1p(o) if self.log_features else o], 1)
