#!/usr/bin/env python
"""Hand-written PyTorch references for ``benchmarks/autoregressive.py``: NADE, MADE and PixelCNN over binary
pixels as a researcher would write them without a library, with the zoo models' sizes.

* :class:`RefNADE` — Larochelle & Murray (2011), 500 hidden units: all conditionals from one exclusive
  ``cumsum`` of ``x_k W_{:,k}`` over ``(B, D, H)``, autograd for the gradient.
* :class:`RefMADE` — Germain et al. (2015), one hidden layer of 500 ReLUs, the raster ordering, hidden
  degrees drawn uniformly from ``1 … D-1`` once (seeded), masks as fixed buffers.
* :class:`RefPixelCNN` — van den Oord et al. (2016) as the zoo sizes it: a 7×7 type-A masked convolution,
  5 residual 3×3 type-B ones, ``relu → 1×1 → relu → 1×1`` to one logit per pixel, 32 channels.

Each takes flat 0/1 images ``(B, 784)`` and returns ``log p(x)`` per image (nats), exact.
Self-check (each an exact distribution: on 3×3 images the masses of all 512 binary images sum to 1)::

    .venv/bin/python benchmarks/autoregressive_refs.py
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


def _bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


class RefNADE(nn.Module):
    def __init__(self, dim: int = 784, hidden: int = 500) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(hidden, dim) * 0.01)
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(dim, hidden) * 0.01)
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        contrib = x.unsqueeze(-1) * self.W.t()  # (B, D, H)
        h = torch.sigmoid(self.c + contrib.cumsum(1) - contrib)
        return _bernoulli_log_prob((h * self.V).sum(-1) + self.b, x)


class RefMADE(nn.Module):
    def __init__(self, dim: int = 784, hidden: int = 500, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        deg_in = torch.arange(1, dim + 1)
        deg_h = torch.randint(1, dim, (hidden,), generator=g)
        self.register_buffer("m1", (deg_h[:, None] >= deg_in[None, :]).float())
        self.register_buffer("m2", (deg_in[:, None] > deg_h[None, :]).float())
        self.l1, self.l2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(F.linear(x, self.l1.weight * self.m1, self.l1.bias))
        return _bernoulli_log_prob(F.linear(h, self.l2.weight * self.m2, self.l2.bias), x)


class _MaskedConv(nn.Conv2d):
    def __init__(self, cin: int, cout: int, k: int, kind: str) -> None:
        super().__init__(cin, cout, k, padding=k // 2)
        mask = torch.ones(k, k)
        mask[k // 2, k // 2 + (kind == "B"):] = 0
        mask[k // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class RefPixelCNN(nn.Module):
    def __init__(self, side: int = 28, channels: int = 32, layers: int = 5) -> None:
        super().__init__()
        self.side = side
        self.first = _MaskedConv(1, channels, 7, "A")
        self.blocks = nn.ModuleList(_MaskedConv(channels, channels, 3, "B") for _ in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = x.reshape(-1, 1, self.side, self.side)
        h = self.first(img)
        for conv in self.blocks:
            h = h + conv(F.relu(h))
        return _bernoulli_log_prob(self.head(h), img)


REFERENCES = {"nade": RefNADE, "made": RefMADE, "pixelcnn": RefPixelCNN}


def _self_check() -> None:
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9)))
    for name, model in [("nade", RefNADE(9, 5)), ("made", RefMADE(9, 12)), ("pixelcnn", RefPixelCNN(3, 4, 2))]:
        with torch.no_grad():
            total = float(model(every).exp().sum())
        print(f"{name}: sum over all 512 images of p(x) = {total:.6f}")
        assert abs(total - 1.0) < 1e-4, name


if __name__ == "__main__":
    _self_check()
