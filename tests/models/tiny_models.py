"""Tiny models shared by the model and training tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepgm.distributions import Deterministic, Empirical
from deepgm.losses import NonSaturatingGAN
from deepgm.models import GAN, Model
from deepgm.zoo import DataInfo, get
from deepgm.zoo.vae import VAEConfig


class _Gen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loc": self.lin(z)}


def tiny_gan(**kw: Any) -> tuple[Model, nn.Module]:
    """A seeded 3 → 2 generator and a 2-8-1 discriminator under the non-saturating GAN; ``kw`` go to GAN."""
    torch.manual_seed(0)
    gen = Deterministic(var=["x"], cond_var=["z"], net=_Gen(), name="G")
    disc = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    return GAN(NonSaturatingGAN(Empirical(var=["x"]), gen, disc).mean(), gen, **kw), disc


def tiny_vae() -> Model:
    """The zoo's VAE with z = 2 and one hidden layer of 8 on 16 binary pixels, seeded."""
    torch.manual_seed(123)
    return get("vae").build(VAEConfig(z_dim=2, hidden=(8,)), DataInfo("toy", (16,)))


def binary_data(n: int = 40, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` fixed binary 16-pixel images (``seed`` picks which)."""
    return {"x": torch.bernoulli(torch.rand(n, 16, generator=torch.Generator().manual_seed(seed)))}
