"""Coupling layers: NICE's additive coupling and scaling, RealNVP's affine coupling, spline coupling.

A coupling layer keeps the masked part ``x_m = m ⊙ x`` and transforms the rest elementwise with
parameters computed from ``x_m`` (and an optional context): its Jacobian is triangular, so
``log|det J|`` is a sum over the transformed elements, and its inverse is one pass of the network.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> mask = alternating_mask(4)
>>> mask
tensor([1., 0., 1., 0.])
>>> layer = AffineCoupling(mask)
>>> for w in layer.parameters():  # away from the identity a fresh coupling starts at
...     _ = torch.nn.init.normal_(w, std=0.3)
>>> x = torch.randn(5, 4)
>>> y, logdet = layer(x)
>>> torch.equal(y[:, mask.bool()], x[:, mask.bool()]), torch.allclose(layer.inverse(y)[0], x, atol=1e-5)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepgm.errors import ShapeError
from deepgm.flows.base import ConvConditioner, MLPConditioner, Transform, sum_except_batch
from deepgm.flows.spline import rq_spline

__all__ = [
    "alternating_mask", "checkerboard_mask", "channel_mask", "AdditiveCoupling", "AffineCoupling",
    "RQSplineCoupling", "Scaling",
]


def alternating_mask(dim: int, parity: int = 0) -> torch.Tensor:
    """A vector mask ``m_i = 1`` where ``i ≡ parity (mod 2)``: ``[1, 0, 1, 0, …]`` for parity 0."""
    if dim < 2:
        raise ValueError(f"alternating_mask: a coupling needs at least 2 dimensions, got {dim}")
    return ((torch.arange(dim) + parity) % 2 == 0).float()


def checkerboard_mask(height: int, width: int, parity: int = 0) -> torch.Tensor:
    """An image mask ``(1, H, W)``, ``m_ij = 1`` where ``i + j ≡ parity (mod 2)``, shared by all channels."""
    i = torch.arange(height)[:, None]
    j = torch.arange(width)[None, :]
    return ((i + j + parity) % 2 == 0).float()[None]


def channel_mask(channels: int, parity: int = 0) -> torch.Tensor:
    """An image mask ``(C, 1, 1)``: the first half of the channels (parity 0) or the second (parity 1)."""
    if channels < 2:
        raise ValueError(f"channel_mask: needs at least 2 channels, got {channels}")
    m = (torch.arange(channels) < channels // 2).float()
    return (m if parity == 0 else 1 - m)[:, None, None]


class _Coupling(Transform):
    """Shared machinery: the mask, the conditioner and the ``k`` parameters per element it returns."""

    n_params: int = 1
    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module | None, hidden: Sequence[int] | int,
                 context_dim: int, event_shape: Sequence[int] | None) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.get_default_dtype())
        if event_shape is None:
            event_shape = tuple(mask.shape)
        self.event_shape = tuple(int(s) for s in event_shape)
        if len(self.event_shape) not in (1, 3):
            raise ShapeError(f"{type(self).__name__}: event shape must be (D,) or (C, H, W), got {self.event_shape}")
        try:
            full = mask.expand(self.event_shape)
        except RuntimeError:
            raise ShapeError(f"{type(self).__name__}: mask of shape {tuple(mask.shape)} does not broadcast to the "
                             f"event shape {self.event_shape}") from None
        if bool((full == 1).all()) or bool((full == 0).all()):
            raise ValueError(f"{type(self).__name__}: the mask must keep some elements and transform others")
        self.register_buffer("mask", full.clone())
        k = self.n_params
        if conditioner is None:
            if len(self.event_shape) == 1:
                hs = (hidden,) if isinstance(hidden, int) else tuple(hidden)
                conditioner = MLPConditioner(self.event_shape[0], k * self.event_shape[0], hs, context_dim)
            else:
                h = hidden if isinstance(hidden, int) else int(hidden[0])
                nl = 2 if isinstance(hidden, int) else max(len(hidden), 1)
                c = self.event_shape[0]
                conditioner = ConvConditioner(c, k * c, h, nl, context_dim)
        self.conditioner = conditioner
        self.context_dim = context_dim

    def _params(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``(N, k, *event_shape)``: the conditioner's output at the kept part of ``x``."""
        if tuple(x.shape[1:]) != self.event_shape:
            raise ShapeError(f"{type(self).__name__}: expected inputs (N, {', '.join(map(str, self.event_shape))}), "
                             f"got {tuple(x.shape)}")
        out: torch.Tensor = self.conditioner(x * self.mask, context)
        return out.reshape(x.shape[0], self.n_params, *self.event_shape)


class AdditiveCoupling(_Coupling):
    """NICE (Dinh et al. 2014): ``y = x_m + (1-m) ⊙ (x + t(x_m))``, ``log|det J| = 0``.

    ``mask`` is a vector or image mask (see :func:`alternating_mask`, :func:`checkerboard_mask`,
    :func:`channel_mask`); ``conditioner`` defaults to an MLP (vectors) or a CNN (images) of ``hidden``;
    ``context_dim > 0`` makes it conditional (``t(x_m, c)``).
    """

    n_params = 1

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module | None = None, hidden: Sequence[int] | int = (64, 64),
                 context_dim: int = 0, event_shape: Sequence[int] | None = None) -> None:
        super().__init__(mask, conditioner, hidden, context_dim, event_shape)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        t = self._params(x, context)[:, 0]
        return x + (1 - self.mask) * t, x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        t = self._params(y, context)[:, 0]
        return y - (1 - self.mask) * t, y.new_zeros(y.shape[0])


class AffineCoupling(_Coupling):
    """RealNVP (Dinh et al. 2017): ``y = x_m + (1-m) ⊙ (x ⊙ exp(s(x_m)) + t(x_m))``,
    ``log|det J| = Σ (1-m) ⊙ s``; ``s = c·tanh(ŝ/c)`` is kept in ``(-c, c)`` (``scale_clamp``)."""

    n_params = 2

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module | None = None, hidden: Sequence[int] | int = (64, 64),
                 context_dim: int = 0, event_shape: Sequence[int] | None = None, scale_clamp: float = 3.0) -> None:
        super().__init__(mask, conditioner, hidden, context_dim, event_shape)
        self.scale_clamp = scale_clamp

    def _st(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._params(x, context)
        c = self.scale_clamp
        s = (c * torch.tanh(p[:, 0] / c)) * (1 - self.mask)
        return s, p[:, 1] * (1 - self.mask)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._st(x, context)
        return x * torch.exp(s) + t, sum_except_batch(s)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self._st(y, context)
        return (y - t) * torch.exp(-s), -sum_except_batch(s)


class RQSplineCoupling(_Coupling):
    """Neural spline coupling (Durkan et al. 2019): the transformed elements go through a monotone
    rational-quadratic spline with ``bins`` bins on ``[-bound, bound]`` (identity outside), its widths,
    heights and knot derivatives given by the conditioner at ``x_m``. Starts as the identity."""

    def __init__(self, mask: torch.Tensor, bins: int = 8, bound: float = 3.0, conditioner: nn.Module | None = None,
                 hidden: Sequence[int] | int = (64, 64), context_dim: int = 0,
                 event_shape: Sequence[int] | None = None) -> None:
        if bins < 1:
            raise ValueError(f"RQSplineCoupling: bins must be >= 1, got {bins}")
        self.n_params = 3 * bins - 1
        super().__init__(mask, conditioner, hidden, context_dim, event_shape)
        self.bins = bins
        self.bound = bound

    def _spline(self, x: torch.Tensor, context: torch.Tensor | None, inverse: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._params(x, context).movedim(1, -1)
        k = self.bins
        y, ld = rq_spline(x, p[..., :k], p[..., k:2 * k], p[..., 2 * k:], self.bound, inverse=inverse)
        keep = self.mask
        return keep * x + (1 - keep) * y, sum_except_batch((1 - keep) * ld)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._spline(x, context, inverse=False)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._spline(y, context, inverse=True)


class Scaling(Transform):
    """NICE's diagonal scaling layer: ``y = x ⊙ exp(s)``, ``log|det J| = Σ s`` (``s`` learnt, starts at 0)."""

    def __init__(self, event_shape: int | Sequence[int]) -> None:
        super().__init__()
        shape = (event_shape,) if isinstance(event_shape, int) else tuple(event_shape)
        self.log_scale = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y * torch.exp(-self.log_scale), (-self.log_scale.sum()).expand(y.shape[0])

