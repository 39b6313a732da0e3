"""Convolutional encoder and decoder for small square images given as flat vectors (MNIST 28×28, 8×8
digits, 32×32 sprites): two stride-2 convolutions down, two transposed convolutions up.

>>> import torch
>>> encoder, decoder = ConvEncoder((1, 8, 8), z_dim=2, hidden=16), ConvDecoder(2, (1, 8, 8), hidden=16)
>>> params = encoder(torch.zeros(3, 64))
>>> params["loc"].shape, bool((params["scale"] > 0).all()), decoder(params["loc"])["logits"].shape
(torch.Size([3, 2]), True, torch.Size([3, 64]))
>>> ConvEncoder((1, 6, 6), z_dim=2)
Traceback (most recent call last):
...
deepgm.errors.ShapeError: conv networks need image sides divisible by 4, got (1, 6, 6)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.errors import ShapeError

__all__ = ["ConvEncoder", "ConvDecoder", "check_sides_by_4"]


def check_sides_by_4(image_shape: tuple[int, int, int], owner: str = "conv networks") -> tuple[int, int, int]:
    """``image_shape`` ``(C, H, W)`` when ``H`` and ``W`` are divisible by 4 (two stride-2 halvings, as the
    conv encoders/decoders and GQN's networks do), else a :class:`ShapeError` naming ``owner``."""
    c, h, w = image_shape
    if h % 4 or w % 4:
        raise ShapeError(f"{owner} need image sides divisible by 4, got {image_shape}")
    return c, h, w


class ConvEncoder(nn.Module):
    """Flat images ``(N, C·H·W)`` → ``{"loc", "scale"}`` of a ``z_dim`` Normal: conv(32, s2) → conv(64, s2)
    → linear(hidden) → heads; ``scale = softplus(·) + 1e-4``."""

    def __init__(self, image_shape: tuple[int, int, int], z_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.image_shape = check_sides_by_4(image_shape)
        c, h, w = self.image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
        )
        self.loc, self.scale = nn.Linear(hidden, z_dim), nn.Linear(hidden, z_dim)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.body(x.reshape(x.shape[0], *self.image_shape))
        return {"loc": self.loc(feats), "scale": F.softplus(self.scale(feats)) + 1e-4}


class ConvDecoder(nn.Module):
    """``z (N, z_dim)`` → ``{"logits": (N, C·H·W)}``: linear → 64×(H/4)×(W/4) → two transposed convs."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], hidden: int = 256) -> None:
        super().__init__()
        self.image_shape = check_sides_by_4(image_shape)
        c, h, w = self.image_shape
        self.grid = (64, h // 4, w // 4)
        self.body = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64 * (h // 4) * (w // 4)),
                                  nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
                                nn.ConvTranspose2d(32, c, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.up(self.body(z).reshape(z.shape[0], *self.grid))
        return {"logits": out.reshape(z.shape[0], -1)}
