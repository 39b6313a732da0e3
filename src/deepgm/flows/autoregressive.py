"""The masked autoregressive flows: MAF (fast density) and IAF (fast sampling), built on MADE
(:mod:`deepgm.nn.made`, re-exported here).

Output ``i`` depends on inputs ``≤ i`` only, so the Jacobian is lower-triangular and its log-determinant
is the sum of the log-diagonal:

>>> import torch
>>> _ = torch.manual_seed(0)
>>> f = MAF(3, hidden=(8,))
>>> for w in f.parameters():  # away from the identity a fresh MAF starts at
...     _ = torch.nn.init.normal_(w, std=0.5)
>>> x = torch.randn(1, 3)
>>> u, logdet = f(x)
>>> J = torch.autograd.functional.jacobian(lambda v: f(v)[0], x)[0, :, 0]
>>> bool((J.triu(1) == 0).all()), torch.allclose(logdet, J.diagonal().abs().log().sum())
(True, True)
>>> x_back, _ = f.inverse(u)  # D passes of MADE
>>> torch.allclose(x_back, x, atol=1e-5)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deepgm.flows.base import Transform
from deepgm.nn.made import MADE, MaskedLinear

__all__ = ["MaskedLinear", "MADE", "MAF", "IAF", "MaskedAffineAutoregressive"]


class MaskedAffineAutoregressive(Transform):
    """MAF (Papamakarios et al. 2017) in the normalising direction:
    ``u_i = (x_i - μ_i(x_{<i})) exp(-α_i(x_{<i}))``, ``log|det J| = -Σ α_i``: one pass of MADE for the
    density; the inverse (sampling) takes ``D`` passes. ``α = c·tanh(α̂/c)`` (``scale_clamp``)."""

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64), context_dim: int = 0,
                 order: Sequence[int] | torch.Tensor | None = None, scale_clamp: float = 3.0) -> None:
        super().__init__()
        self.made = MADE(dim, 2, hidden, context_dim, order)
        self.scale_clamp = scale_clamp
        self.dim = dim

    def _mu_alpha(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.made(x, context)
        c = self.scale_clamp
        return p[:, 0], c * torch.tanh(p[:, 1] / c)

    def _normalise(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, alpha = self._mu_alpha(x, context)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)

    def _generate(self, u: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.zeros_like(u)
        alpha = torch.zeros_like(u)
        for i in self.made.degrees.argsort().tolist():  # dimension i is exact after its turn
            mu, alpha = self._mu_alpha(x, context)
            x = x.clone()
            x[:, i] = u[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
        return x, alpha.sum(-1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._normalise(x, context)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._generate(y, context)


MAF = MaskedAffineAutoregressive


class IAF(MaskedAffineAutoregressive):
    """IAF (Kingma et al. 2016): MAF's map used for sampling. ``inverse`` (latent → data) is one pass,
    ``x = (u - μ(u)) exp(-α(u))``, with ``log|det| = -Σ α`` — so a posterior ``q(z|x)`` built with IAF
    layers samples and scores its own samples fast; ``forward`` (density of an arbitrary point) takes
    ``D`` passes."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._generate(x, context)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._normalise(y, context)
