"""Transforms of images and shapes: invertible 1×1 convolution, squeeze, reshape, permutations, and the
multi-scale (factor-out) architecture of RealNVP and Glow.

>>> import torch
>>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> y, logdet = Squeeze()(x)
>>> y.shape, y[0, :, 0, 0], logdet  # the top-left 2×2 block became four channels
(torch.Size([1, 4, 2, 2]), tensor([0., 1., 4., 5.]), tensor([0.]))
>>> torch.equal(Squeeze().inverse(y)[0], x)
True
>>> conv = InvertibleConv1x1(4, seed=0)
>>> z, ld = conv(y)
>>> torch.allclose(conv.inverse(z)[0], y, atol=1e-4), torch.allclose(ld, conv.log_s.sum() * 4)
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError
from deepgm.flows.base import Compose, Inverse, Transform
from deepgm.flows.coupling import AffineCoupling, channel_mask, checkerboard_mask
from deepgm.flows.normalization import ActNorm

__all__ = [
    "InvertibleConv1x1", "Squeeze", "Reshape", "Permutation", "ReversePermutation", "RandomPermutation",
    "FactorOut", "multiscale_realnvp",
]


class InvertibleConv1x1(Transform):
    """Glow's invertible 1×1 convolution, LU-parameterised: ``W = P L (U + diag(sign · exp(log|s|)))``,
    ``y = W x`` over channels at every pixel, ``log|det J| = H W Σ log|s|``. Works on ``(N, C)`` too."""

    perm: torch.Tensor
    sign: torch.Tensor
    lower_mask: torch.Tensor
    eye: torch.Tensor

    def __init__(self, channels: int, seed: int | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))
        self.channels = channels

    def weight(self) -> torch.Tensor:
        """The ``C × C`` matrix ``W``."""
        lo = self.lower * self.lower_mask + self.eye
        up = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.perm @ lo @ up

    def _mix(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ShapeError(f"InvertibleConv1x1: expected (N, {self.channels}, ...), got {tuple(x.shape)}")
        if x.dim() == 2:
            return x @ w.T
        return F.conv2d(x, w[:, :, None, None])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = x[0, 0].numel()
        return self._mix(x, self.weight()), (self.log_s.sum() * pixels).expand(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = y[0, 0].numel()
        return self._mix(y, torch.linalg.inv(self.weight())), (-self.log_s.sum() * pixels).expand(y.shape[0])


class Squeeze(Transform):
    """``(C, H, W) → (4C, H/2, W/2)``: every 2×2 block of pixels becomes 4 channels; ``log|det J| = 0``."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            raise ShapeError(f"Squeeze: needs (N, C, H, W) with even H and W, got {tuple(x.shape)}")
        n, c, h, w = x.shape
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if y.dim() != 4 or y.shape[1] % 4:
            raise ShapeError(f"Squeeze.inverse: needs (N, 4C, H, W), got {tuple(y.shape)}")
        n, c4, h, w = y.shape
        c = c4 // 4
        x = y.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h, 2 * w)
        return x, y.new_zeros(n)


class Reshape(Transform):
    """``(N, *in_shape) → (N, *out_shape)`` (e.g. flat MNIST vectors to images); ``log|det J| = 0``."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if torch.Size(self.in_shape).numel() != torch.Size(self.out_shape).numel():
            raise ShapeError(f"Reshape: {self.in_shape} and {self.out_shape} hold different numbers of values")

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x.reshape(x.shape[0], *self.out_shape), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y.reshape(y.shape[0], *self.in_shape), y.new_zeros(y.shape[0])


class Permutation(Transform):
    """``y = x[:, perm]`` along dimension 1 (features of a vector, channels of an image); ``log|det J| = 0``."""

    perm: torch.Tensor
    inv_perm: torch.Tensor

    def __init__(self, perm: Sequence[int] | torch.Tensor) -> None:
        super().__init__()
        p = torch.as_tensor(perm, dtype=torch.long)
        if sorted(p.tolist()) != list(range(p.numel())):
            raise ValueError(f"Permutation: {p.tolist()} is not a permutation of 0..{p.numel() - 1}")
        self.register_buffer("perm", p)
        self.register_buffer("inv_perm", torch.argsort(p))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] != self.perm.numel():
            raise ShapeError(f"Permutation: expected {self.perm.numel()} features in dimension 1, got {tuple(x.shape)}")
        return x[:, self.perm], x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return y[:, self.inv_perm], y.new_zeros(y.shape[0])


class ReversePermutation(Permutation):
    """Reverses the order of the ``n`` features (or channels)."""

    def __init__(self, n: int) -> None:
        super().__init__(torch.arange(n - 1, -1, -1))


class RandomPermutation(Permutation):
    """A random permutation of ``n`` features, fixed at construction (``seed`` for reproducibility)."""

    def __init__(self, n: int, seed: int | None = None) -> None:
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        super().__init__(torch.randperm(n, generator=g))


class FactorOut(Transform):
    """The multi-scale step: the first ``keep`` channels are final (already latent) and pass unchanged;
    the rest go through ``inner`` (which must keep their shape). ``log|det J|`` is ``inner``'s."""

    def __init__(self, keep: int, inner: Transform) -> None:
        super().__init__()
        self.keep, self.inner = keep, inner

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z, rest = x[:, : self.keep], x[:, self.keep:]
        rest, ld = self.inner(rest, context)
        return torch.cat([z, rest], 1), ld

    def inverse(self, y: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z, rest = y[:, : self.keep], y[:, self.keep:]
        rest, ld = self.inner.inverse(rest, context)
        return torch.cat([z, rest], 1), ld


def multiscale_realnvp(shape: Sequence[int], levels: int = 2, couplings: int = 3, hidden: int = 32,
                       context_dim: int = 0, actnorm: bool = True) -> Compose:
    """RealNVP's multi-scale architecture on images ``(C, H, W)``; the output keeps the input's shape.

    Each level: ``couplings`` checkerboard affine couplings, squeeze, ``couplings`` channel-mask couplings,
    then half the channels are factored out and the rest go to the next level, then unsqueeze. The last
    level is ``couplings + 1`` checkerboard couplings. ``H`` and ``W`` must be divisible by
    ``2^(levels-1)``.
    """
    c, h, w = (int(s) for s in shape)
    if levels < 1:
        raise ValueError(f"multiscale_realnvp: levels must be >= 1, got {levels}")

    def checker(c_: int, h_: int, w_: int, n: int) -> list[Transform]:
        out: list[Transform] = []
        for i in range(n):
            if actnorm:
                out.append(ActNorm(c_))
            out.append(AffineCoupling(checkerboard_mask(h_, w_, i % 2), hidden=hidden, context_dim=context_dim,
                                      event_shape=(c_, h_, w_)))
        return out

    def level(c_: int, h_: int, w_: int, k: int) -> Compose:
        if k == levels - 1:
            return Compose(checker(c_, h_, w_, couplings + 1))
        if h_ % 2 or w_ % 2:
            raise ShapeError(f"multiscale_realnvp: {levels} levels need H and W divisible by {2 ** (levels - 1)}, "
                             f"got {(h, w)}")
        ts = checker(c_, h_, w_, couplings)
        ts.append(Squeeze())
        c4, h2, w2 = 4 * c_, h_ // 2, w_ // 2
        for i in range(couplings):
            if actnorm:
                ts.append(ActNorm(c4))
            ts.append(AffineCoupling(channel_mask(c4, i % 2), hidden=hidden, context_dim=context_dim,
                                     event_shape=(c4, h2, w2)))
        ts.append(FactorOut(c4 // 2, level(c4 - c4 // 2, h2, w2, k + 1)))
        ts.append(Inverse(Squeeze()))
        return Compose(ts)

    return level(c, h, w, 0)
