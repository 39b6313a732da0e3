"""MADE and the masked autoregressive flows: MAF (fast density) and IAF (fast sampling).

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
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError
from deepgm.flows.base import Transform, _check_context

__all__ = ["MaskedLinear", "MADE", "MAF", "IAF", "MaskedAffineAutoregressive"]


class MaskedLinear(nn.Linear):
    """``y = (W ⊙ M) x + b`` with a fixed 0/1 mask ``M`` of the weight's shape."""

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ShapeError(f"MaskedLinear: mask must be ({out_features}, {in_features}), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder (Germain et al. 2015): ``k`` outputs per input dimension, output ``i`` depending
    only on the inputs before ``i`` in ``order`` (default ``0, 1, …, D-1``), and on the whole context.

    Returns ``(N, k, D)``. Degrees: input ``i`` has degree ``order⁻¹(i) + 1``, hidden units cycle through
    ``1 … D-1``; a weight is kept from degree ``a`` to hidden degree ``b`` when ``b ≥ a``, to an output of
    degree ``b`` when ``b > a``. ``zero_init`` starts the last layer at zero.
    """

    degrees: torch.Tensor

    def __init__(self, dim: int, n_params: int = 2, hidden: Sequence[int] = (64, 64), context_dim: int = 0,
                 order: Sequence[int] | torch.Tensor | None = None, zero_init: bool = True) -> None:
        super().__init__()
        if dim < 1 or not hidden:
            raise ValueError(f"MADE: needs dim >= 1 and at least one hidden layer, got dim={dim}, hidden={hidden}")
        order_t = torch.arange(dim) if order is None else torch.as_tensor(order, dtype=torch.long)
        if sorted(order_t.tolist()) != list(range(dim)):
            raise ValueError(f"MADE: order must be a permutation of 0..{dim - 1}, got {order_t.tolist()}")
        deg_in = torch.empty(dim, dtype=torch.long)
        deg_in[order_t] = torch.arange(1, dim + 1)
        self.register_buffer("degrees", deg_in)
        layers: list[nn.Module] = []
        prev = deg_in
        for h in hidden:
            deg_h = (torch.arange(h) % max(dim - 1, 1)) + min(1, dim - 1)
            layers.append(MaskedLinear(prev.numel(), h, (deg_h[:, None] >= prev[None, :]).float()))
            prev = deg_h
        self.hidden = nn.ModuleList(layers)
        deg_out = deg_in.repeat(n_params)
        self.out = MaskedLinear(prev.numel(), n_params * dim, (deg_out[:, None] > prev[None, :]).float())
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.context = nn.Linear(context_dim, hidden[0]) if context_dim else None
        self.dim, self.n_params, self.context_dim = dim, n_params, context_dim

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"MADE: expected inputs (N, {self.dim}), got {tuple(x.shape)}")
        _check_context("MADE", context, self.context_dim, x.shape[0])
        h = self.hidden[0](x)
        if self.context is not None:
            h = h + self.context(context)
        h = F.relu(h)
        for layer in self.hidden[1:]:
            h = F.relu(layer(h))
        out: torch.Tensor = self.out(h)
        return out.reshape(x.shape[0], self.n_params, self.dim)


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
