"""Masked convolutions and the PixelCNN networks (van den Oord et al. 2016): the output at pixel ``(i, j)``
sees only the pixels before it in raster order (rows above, and the pixels to its left in its row).

* :class:`MaskedConv2d` — a convolution whose kernel is zero at and after the centre: type ``"A"`` also
  hides the centre (the first layer: a pixel must not see itself), type ``"B"`` keeps it (later layers).
* :class:`PixelCNNNetwork` — a type-A convolution, residual type-B layers, a 1×1 head. Stacked masked
  convolutions have a *blind spot*: pixels above and to the right that no path reaches.
* :class:`GatedPixelCNNNetwork` — vertical and horizontal stacks with gated activations
  ``tanh(W_f ∗ x) ⊙ σ(W_g ∗ x)`` (van den Oord et al. 2016, "Conditional image generation with PixelCNN
  decoders"): the vertical stack sees the rows above (shifted down one row before it feeds the
  horizontal stack), the horizontal stack the pixels to the left; together they cover every earlier pixel,
  so there is no blind spot.

All channels of one pixel are predicted together from the earlier pixels (a pixel's channels are not
ordered among themselves). Either network may be conditioned on a vector ``cond`` (a one-hot class, a VAE's
latent ``z``), added as a learned bias to every layer (spatially constant). ``receptive_field()`` gives
``(up, left, right)``: how many rows above and columns either side of a pixel its output can depend on,
which the cached sampler of :mod:`deepgm.distributions.pixelcnn` uses to run the network on that window only.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> net = GatedPixelCNNNetwork(1, 1, channels=8, layers=3)
>>> x = torch.rand(1, 1, 4, 4, requires_grad=True)
>>> net(x)[0, 0, 2, 1].backward()  # the output at pixel (2, 1) ...
>>> seen = x.grad[0, 0] != 0
>>> bool(seen.flatten()[2 * 4 + 1:].any())  # ... depends on no pixel at or after (2, 1)
False
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError

__all__ = ["MaskedConv2d", "PixelCNNNetwork", "GatedBlock", "GatedPixelCNNNetwork", "conv_mask"]

MaskType = Literal["A", "B"]


def conv_mask(kernel_size: int, mask_type: MaskType) -> torch.Tensor:
    """The ``(k, k)`` 0/1 mask of a masked convolution: the rows above the centre, and in the centre row the
    columns before the centre (``"A"``) or up to it (``"B"``).

    >>> conv_mask(3, "A").int().tolist(), conv_mask(3, "B").int().tolist()
    ([[1, 1, 1], [1, 0, 0], [0, 0, 0]], [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"conv_mask: mask_type must be 'A' or 'B', got {mask_type!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"conv_mask: kernel_size must be an odd integer >= 1, got {kernel_size}")
    c = kernel_size // 2
    m = torch.zeros(kernel_size, kernel_size)
    m[:c] = 1
    m[c, : c + (1 if mask_type == "B" else 0)] = 1
    return m


class MaskedConv2d(nn.Conv2d):
    """A ``k×k`` convolution (zero padding ``k//2``: same size out) with the mask of :func:`conv_mask`."""

    mask: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: MaskType) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", conv_mask(kernel_size, mask_type)[None, None])
        self.mask_type = mask_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _check_input(owner: str, x: torch.Tensor, channels: int, cond: torch.Tensor | None, cond_dim: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ShapeError(f"{owner}: expected images (N, {channels}, H, W), got {tuple(x.shape)}")
    if cond_dim and (cond is None or cond.shape != (x.shape[0], cond_dim)):
        got = "none" if cond is None else tuple(cond.shape)
        raise ShapeError(f"{owner}: expected a condition of shape ({x.shape[0]}, {cond_dim}), got {got}")
    if not cond_dim and cond is not None:
        raise ShapeError(f"{owner}: built with cond_dim=0, but given a condition of shape {tuple(cond.shape)}")


def _odd(owner: str, name: str, k: int) -> None:
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{owner}: {name} must be an odd integer >= 1, got {k}")


class PixelCNNNetwork(nn.Module):
    """The PixelCNN of van den Oord et al. (2016): a ``first_kernel`` type-A convolution, ``layers``
    residual blocks ``h + conv_B(relu(h))`` (``kernel``×``kernel``), then ``relu → 1×1 → relu → 1×1`` to
    ``out_channels`` per pixel. Images ``(N, in_channels, H, W)`` in, ``(N, out_channels, H, W)`` out."""

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64, layers: int = 5,
                 kernel: int = 3, first_kernel: int = 7, cond_dim: int = 0) -> None:
        super().__init__()
        _odd("PixelCNNNetwork", "kernel", kernel)
        _odd("PixelCNNNetwork", "first_kernel", first_kernel)
        self.first = MaskedConv2d(in_channels, channels, first_kernel, "A")
        self.blocks = nn.ModuleList(MaskedConv2d(channels, channels, kernel, "B") for _ in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, out_channels, 1))
        self.cond = nn.Linear(cond_dim, channels * (layers + 1)) if cond_dim else None
        self.in_channels, self.out_channels, self.cond_dim = in_channels, out_channels, cond_dim
        self.channels, self.layers, self.kernel, self.first_kernel = channels, layers, kernel, first_kernel

    def receptive_field(self) -> tuple[int, int, int]:
        """``(up, left, right)``: rows above and columns either side an output may depend on."""
        r = self.first_kernel // 2 + self.layers * (self.kernel // 2)
        return r, r, r

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("PixelCNNNetwork", x, self.in_channels, cond, self.cond_dim)
        biases = self.cond(cond)[:, :, None, None].chunk(self.layers + 1, 1) if self.cond is not None else None
        h = self.first(x)
        if biases is not None:
            h = h + biases[0]
        for i, conv in enumerate(self.blocks):
            step = conv(F.relu(h))
            h = h + (step + biases[i + 1] if biases is not None else step)
        out: torch.Tensor = self.head(h)
        return out


def _gate(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedBlock(nn.Module):
    """One layer of the Gated PixelCNN: ``(v, h, cond) ↦ (v', h')``.

    The vertical stack convolves a ``(k//2 + 1) × k`` window of the rows at and above each row (so row ``i``
    of ``v'`` depends on rows ``≤ i``); shifted down one row, its pre-activation feeds the horizontal stack,
    which convolves a ``1 × (k//2 + 1)`` window ending at the pixel (type ``"B"``) or just before it (type
    ``"A"``, the first layer). The horizontal stack is residual except in the first layer.
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, mask_type: MaskType, cond_dim: int = 0) -> None:
        super().__init__()
        _odd("GatedBlock", "kernel", kernel)
        if mask_type not in ("A", "B"):
            raise ValueError(f"GatedBlock: mask_type must be 'A' or 'B', got {mask_type!r}")
        half = kernel // 2
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (half + 1, kernel))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, half + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.cond = nn.Linear(cond_dim, 4 * channels) if cond_dim else None
        self.reach, self.mask_type, self.residual = half, mask_type, mask_type == "B" and in_channels == channels

    def forward(self, v: torch.Tensor, h: torch.Tensor,
                cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.reach
        v_pre = self.vertical(F.pad(v, (k, k, k, 0)))  # rows i-k..i, columns j-k..j+k
        if self.mask_type == "A":  # columns j-k-1..j-1: not the pixel itself
            h_pre = self.horizontal(F.pad(h, (k + 1, 0, 0, 0))[..., :-1])
        else:  # columns j-k..j
            h_pre = self.horizontal(F.pad(h, (k, 0, 0, 0)))
        shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # row i gets row i-1: strictly above
        h_pre = h_pre + self.v_to_h(shifted)
        if self.cond is not None:
            cv, ch = self.cond(cond)[:, :, None, None].chunk(2, 1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        v_new = _gate(v_pre)
        h_new = self.h_out(_gate(h_pre))
        return v_new, h + h_new if self.residual else h_new


class GatedPixelCNNNetwork(nn.Module):
    """The Gated PixelCNN: a type-A :class:`GatedBlock` (``first_kernel``), ``layers - 1`` type-B ones
    (``kernel``), then ``relu → 1×1 → relu → 1×1`` on the horizontal stack to ``out_channels`` per pixel;
    ``cond_dim > 0`` conditions every gate on a vector (a class's one-hot, a latent). No blind spot."""

    def __init__(self, in_channels: int, out_channels: int, channels: int = 32, layers: int = 5,
                 kernel: int = 3, first_kernel: int = 7, cond_dim: int = 0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"GatedPixelCNNNetwork: layers must be >= 1, got {layers}")
        _odd("GatedPixelCNNNetwork", "kernel", kernel)
        _odd("GatedPixelCNNNetwork", "first_kernel", first_kernel)
        blocks = [GatedBlock(in_channels, channels, first_kernel, "A", cond_dim)]
        blocks += [GatedBlock(channels, channels, kernel, "B", cond_dim) for _ in range(layers - 1)]
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, out_channels, 1))
        self.in_channels, self.out_channels, self.cond_dim = in_channels, out_channels, cond_dim
        self.channels, self.layers, self.kernel, self.first_kernel = channels, layers, kernel, first_kernel

    def receptive_field(self) -> tuple[int, int, int]:
        """``(up, left, right)``: rows above and columns either side an output may depend on."""
        s = self.first_kernel // 2 + (self.layers - 1) * (self.kernel // 2)
        return s + 1, s + 1, s

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        _check_input("GatedPixelCNNNetwork", x, self.in_channels, cond, self.cond_dim)
        v, h = x, x
        for block in self.blocks:
            v, h = block(v, h, cond)
        out: torch.Tensor = self.head(h)
        return out
