"""A small U-Net for denoising diffusion: ``ε_θ(x_t, t)`` on images, time given as an integer step.

The layout follows Ho et al. (2020) at a size a CPU can train on 28×28 MNIST: a sinusoidal embedding of
the step ``t`` passed through a two-layer MLP; at each resolution residual blocks (group norm, SiLU,
3×3 convolutions, the time embedding added in between); a strided convolution down and a nearest-neighbour
upsampling with a convolution up; skip connections concatenated on the way up; optional single-head
self-attention at the lowest resolution. ``channel_mults=(1, 2, 2)`` gives two down/up levels
(28 → 14 → 7 for MNIST). :class:`MLPNoisePredictor` is the same idea for flat data that are not images
(2-D toys): an MLP of ``[x_t, MLP(embedding(t))]``.

>>> import torch
>>> net = UNet(in_channels=1, base_channels=8, channel_mults=(1, 2), image_size=(8, 8))
>>> net(torch.zeros(3, 1, 8, 8), torch.tensor([1, 10, 100])).shape
torch.Size([3, 1, 8, 8])
>>> net(torch.zeros(3, 8, 8), torch.tensor([1, 10, 100]))
Traceback (most recent call last):
...
deepgm.errors.ShapeError: UNet: x must have shape (B, 1, 8, 8), got (3, 8, 8)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError

__all__ = ["UNet", "MLPNoisePredictor", "timestep_embedding", "ResidualBlock", "SelfAttention2d"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """The sinusoidal embedding ``[sin(t ω_k), cos(t ω_k)]`` of steps ``t`` (shape ``(B,)``), with
    ``ω_k = max_period^(-k/(dim/2))``: shape ``(B, dim)`` (an odd ``dim`` is padded with a zero).

    >>> timestep_embedding(torch.tensor([0, 5]), 4)[0].tolist()  # t = 0: sines 0, cosines 1
    [0.0, 0.0, 1.0, 1.0]
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def _groups(channels: int, groups: int) -> int:
    """The largest number of groups at most ``groups`` that divides ``channels``."""
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


class ResidualBlock(nn.Module):
    """``h = conv(SiLU(GN(x))) + W e(t)``, ``out = skip(x) + conv(dropout(SiLU(GN(h))))``."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int, dropout: float = 0.0,
                 groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels, groups), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels, groups), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        out: torch.Tensor = self.skip(x) + h
        return out


class SelfAttention2d(nn.Module):
    """Single-head self-attention over the pixels of a feature map, added to its input."""

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels, groups), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        attn = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
        out = torch.einsum("bij,bcj->bci", attn, v).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """``ε_θ(x, t)``: images ``(B, C, H, W)`` and steps ``t`` (``(B,)`` or ``(B, 1)``, integers or floats)
    to ``(B, C, H, W)``.

    ``base_channels`` C at the first resolution, ``C·m`` at the others for ``m`` in ``channel_mults``
    (one resolution per entry, halved between them: ``H`` and ``W`` must divide by ``2^(len-1)``);
    ``blocks`` residual blocks per resolution; ``attention`` adds self-attention at the lowest resolution,
    between the two middle blocks. The output convolution starts at zero, so an untrained network predicts ε = 0.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32, channel_mults: Sequence[int] = (1, 2, 2),
                 blocks: int = 1, attention: bool = True, image_size: tuple[int, int] = (28, 28),
                 dropout: float = 0.0, groups: int = 8) -> None:
        super().__init__()
        mults = tuple(int(m) for m in channel_mults)
        for name, value in (("in_channels", in_channels), ("base_channels", base_channels), ("blocks", blocks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ShapeError(f"UNet: {name} must be an integer of at least 1, got {value!r}")
        if not mults or any(m < 1 for m in mults):
            raise ShapeError(f"UNet: channel_mults must be a non-empty list of integers >= 1, got {channel_mults!r}")
        factor = 2 ** (len(mults) - 1)
        h, w = (int(s) for s in image_size)
        if h % factor or w % factor:
            raise ShapeError(f"UNet: image_size {tuple(image_size)} must be divisible by {factor} "
                             f"({len(mults) - 1} halvings for channel_mults={mults})")
        self.in_channels, self.image_size = in_channels, (h, w)
        c = base_channels
        self.time_channels = c
        time_dim = 4 * c
        self.time_mlp = nn.Sequential(nn.Linear(c, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [c]
        ch = c
        for i, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(ResidualBlock(ch, c * m, time_dim, dropout, groups))
                ch = c * m
                skips.append(ch)
            if i < len(mults) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = ResidualBlock(ch, ch, time_dim, dropout, groups)
        self.mid_attn: nn.Module = SelfAttention2d(ch, groups) if attention else nn.Identity()
        self.mid2 = ResidualBlock(ch, ch, time_dim, dropout, groups)
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(ResidualBlock(ch + skips.pop(), c * m, time_dim, dropout, groups))
                ch = c * m
            if i > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(ch, ch, 3, padding=1)))
        self.norm_out = nn.GroupNorm(_groups(ch, groups), ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        assert self.conv_out.bias is not None
        nn.init.zeros_(self.conv_out.bias)

    def _check(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        want = (self.in_channels, *self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ShapeError(f"UNet: x must have shape (B, {', '.join(map(str, want))}), got {tuple(x.shape)}")
        if not torch.is_tensor(t):
            t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        elif t.dim() == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.dim() != 1 or t.shape[0] != x.shape[0]:
            raise ShapeError(f"UNet: t must have shape ({x.shape[0]},) or ({x.shape[0]}, 1) for x of "
                             f"{x.shape[0]} images, got {tuple(t.shape)}")
        return t

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = self._check(x, t)
        emb = self.time_mlp(timestep_embedding(t, self.time_channels))
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResidualBlock) else layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, ResidualBlock) else layer(h)
        out: torch.Tensor = self.conv_out(F.silu(self.norm_out(h)))
        return out


class MLPNoisePredictor(nn.Module):
    """``ε_θ(x, t)`` for flat data ``x (N, dim)``: an MLP (SiLU) of ``x`` concatenated with the time
    embedding's features, ``t`` of shape ``(N,)`` or ``(N, 1)``; the last layer starts at zero.

    >>> net = MLPNoisePredictor(2, hidden=(16, 16))
    >>> net(torch.randn(5, 2), torch.arange(5)).abs().max().item()
    0.0
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (256, 256), time_channels: int = 32) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ShapeError(f"MLPNoisePredictor: dim must be an integer of at least 1, got {dim!r}")
        widths = [int(h) for h in hidden]
        if not widths or any(h < 1 for h in widths):
            raise ShapeError(f"MLPNoisePredictor: hidden must be a non-empty list of widths >= 1, got {hidden!r}")
        self.dim, self.time_channels = dim, time_channels
        self.time_mlp = nn.Sequential(nn.Linear(time_channels, widths[0]), nn.SiLU())
        layers: list[nn.Module] = []
        width = dim + widths[0]
        for h in widths:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        out = nn.Linear(width, dim)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.body = nn.Sequential(*layers, out)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"MLPNoisePredictor: x must have shape (N, {self.dim}), got {tuple(x.shape)}")
        t = t.reshape(-1)
        if t.shape[0] != x.shape[0]:
            raise ShapeError(f"MLPNoisePredictor: t must hold one step per row of x ({x.shape[0]}), got "
                             f"shape {tuple(t.shape)}")
        emb = self.time_mlp(timestep_embedding(t, self.time_channels))
        out: torch.Tensor = self.body(torch.cat([x, emb], dim=-1))
        return out
