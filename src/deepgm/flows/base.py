"""The transform interface, inversion, composition, and the conditioner networks couplings use.

A :class:`Transform` maps a batch ``x`` of shape ``(N, *event_shape)`` to ``y`` of the same batch size
and returns ``log|det ∂y/∂x|`` per example, shape ``(N,)``. In a :class:`~deepgm.flows.Flow` the
transforms run in the *normalising* direction, data → latent, so that
``log p(x) = log p_u(f(x)) + log|det ∂f/∂x|``; ``inverse`` runs latent → data (sampling) and returns
``log|det ∂f⁻¹/∂y|``.

>>> import torch
>>> from deepgm.flows import AffineCoupling, ReversePermutation, alternating_mask
>>> _ = torch.manual_seed(0)
>>> f = Compose([AffineCoupling(alternating_mask(4)), ReversePermutation(4), AffineCoupling(alternating_mask(4))])
>>> for w in f.parameters():  # away from the identity a fresh coupling starts at
...     _ = torch.nn.init.normal_(w, std=0.3)
>>> x = torch.randn(5, 4)
>>> y, logdet = f(x)
>>> x_back, inverse_logdet = f.inverse(y)
>>> logdet.shape, torch.allclose(x_back, x, atol=1e-5), torch.allclose(inverse_logdet, -logdet, atol=1e-5)
(torch.Size([5]), True, True)
>>> J = torch.autograd.functional.jacobian(lambda v: f(v)[0], x[:1])[0, :, 0]  # one example's Jacobian
>>> torch.allclose(logdet[0], torch.linalg.slogdet(J)[1], atol=1e-5)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import torch
from torch import nn

from deepgm.errors import DeepGMError, ShapeError
from deepgm.nn.mlp import MLP

__all__ = [
    "Transform", "Inverse", "Compose", "NotInvertibleError", "MLPConditioner",
    "ConvConditioner", "sum_except_batch",
]


class NotInvertibleError(DeepGMError, NotImplementedError):
    """A transform was asked for a direction it has no closed form for (e.g. the planar flow's inverse)."""


def sum_except_batch(t: torch.Tensor) -> torch.Tensor:
    """``Σ`` over every dimension but the first: ``(N, ...) → (N,)``."""
    return t.reshape(t.shape[0], -1).sum(-1)


class Transform(nn.Module):
    """An invertible map with a tractable ``log|det J|`` (see the module docstring).

    Subclasses implement ``forward(x, context) -> (y, logdet)`` and ``inverse(y, context) -> (x, logdet)``;
    ``context`` is ``None`` or a ``(N, C)`` tensor for conditional transforms.
    """

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotInvertibleError(f"{type(self).__name__} has no inverse")


class Inverse(Transform):
    """The transform ``t`` run backwards: ``forward`` is ``t.inverse`` and ``inverse`` is ``t.forward``.

    Used, e.g., to put a planar flow in the sampling direction of a posterior.
    """

    def __init__(self, t: Transform) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t.inverse(x, context)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t.forward(y, context)


class Compose(Transform):
    """``f = f_K ∘ … ∘ f_1``: ``log|det J_f| = Σ_k log|det J_{f_k}|``; the inverse runs in reverse order."""

    def __init__(self, transforms: Iterable[Transform]) -> None:
        super().__init__()
        ts = list(transforms)
        for t in ts:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose: every element must be a deepgm.flows Transform, got {type(t).__name__}")
        self.transforms = nn.ModuleList(ts)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        total = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ld = t(x, context)
            total = total + ld
        return x, total

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        total = y.new_zeros(y.shape[0])
        for t in reversed(self.transforms):
            y, ld = cast(Transform, t).inverse(y, context)
            total = total + ld
        return y, total

    def __len__(self) -> int:
        return len(self.transforms)


def _check_context(owner: str, context: torch.Tensor | None, context_dim: int, n: int) -> None:
    if context_dim and context is None:
        raise ValueError(f"{owner} is conditional (context_dim={context_dim}) but was given no context")
    if context is not None:
        if not context_dim:
            raise ValueError(f"{owner} is not conditional (context_dim=0) but was given a context")
        if context.dim() != 2 or context.shape != (n, context_dim):
            raise ShapeError(f"{owner}: context must have shape ({n}, {context_dim}), got {tuple(context.shape)}")


class MLPConditioner(nn.Module):
    """``(x, context) ↦ MLP([x, context])``: the network of a coupling layer on vectors.

    The last layer starts at zero, so a fresh coupling is the identity.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), context_dim: int = 0,
                 zero_init: bool = True) -> None:
        super().__init__()
        self.net = MLP([in_dim + context_dim, *hidden, out_dim], "relu")
        if zero_init:
            last = cast(nn.Linear, self.net[-1])
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.context_dim = context_dim

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        _check_context("MLPConditioner", context, self.context_dim, x.shape[0])
        h = x.reshape(x.shape[0], -1)
        if context is not None:
            h = torch.cat([h, context], -1)
        out: torch.Tensor = self.net(h)
        return out


class ConvConditioner(nn.Module):
    """``(x, context) ↦ CNN(x ⊕ broadcast(context))`` on images ``(N, C, H, W)`` (3×3 convolutions).

    The last layer starts at zero, so a fresh coupling is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 32, n_layers: int = 2,
                 context_dim: int = 0, zero_init: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels + context_dim
        for _ in range(n_layers):
            layers += [nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU()]
            c = hidden
        last = nn.Conv2d(c, out_channels, 3, padding=1)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(cast(torch.Tensor, last.bias))  # Conv2d(bias=True)
        self.net = nn.Sequential(*layers, last)
        self.context_dim = context_dim

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        _check_context("ConvConditioner", context, self.context_dim, x.shape[0])
        if context is not None:
            c = context[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, c], 1)
        out: torch.Tensor = self.net(x)
        return out
