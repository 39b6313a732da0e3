"""DCGAN (Radford et al. 2016) for small square grey images (28×28 MNIST, 8×8 digits): a generator of
transposed convolutions with batch norm and a strided-convolution discriminator with leaky ReLUs, the
non-saturating loss, Adam(2e-4, β₁ = 0.5). Images travel flattened, as the data loaders give them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepgm.data import square_image_shape
from deepgm.distributions import Deterministic, Empirical
from deepgm.losses.gan import NonSaturatingGAN
from deepgm.models.gan import GAN
from deepgm.zoo.gan_basic import GANConfig, latent_prior, optimizer_settings
from deepgm.zoo.registry import DataInfo, register

__all__ = ["DCGANConfig", "DCGenerator", "DCDiscriminator", "build_dcgan"]


@dataclass
class DCGANConfig(GANConfig):
    """DCGAN: the channel width of the convolutions."""

    z_dim: int = 32
    channels: int = 32


def _side(data: DataInfo) -> int:
    shape = square_image_shape(data.x_dim)
    side = shape[-1] if shape is not None else 0
    if not side or side % 4:
        raise ValueError(f"dcgan needs square images with a side divisible by 4 (28×28, 8×8), got x of shape "
                         f"{data.x_shape}")
    return side


class DCGenerator(nn.Module):
    """``z → Linear → (2C, s/4, s/4) → ConvT → (C, s/2, s/2) → ConvT → (1, s, s)``, sigmoid, flattened."""

    def __init__(self, z_dim: int, side: int, channels: int, sigmoid: bool = True) -> None:
        super().__init__()
        c, q = channels, side // 4
        self.c, self.q = c, q
        self.fc = nn.Sequential(nn.Linear(z_dim, 2 * c * q * q), nn.BatchNorm1d(2 * c * q * q), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, 2, 1),
        )
        self.out = nn.Sigmoid() if sigmoid else nn.Identity()

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.fc(z).reshape(z.shape[0], 2 * self.c, self.q, self.q)
        return {"loc": self.out(self.deconv(h)).reshape(z.shape[0], -1)}


class DCDiscriminator(nn.Module):
    """``(1, s, s) → Conv(stride 2) → Conv(stride 2) → Linear``: one logit per image."""

    def __init__(self, side: int, channels: int) -> None:
        super().__init__()
        c, q = channels, side // 4
        self.side = side
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * c * q * q, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit: torch.Tensor = self.net(x.reshape(x.shape[0], 1, self.side, self.side))
        return logit


@register("dcgan", "DCGAN: convolutional generator and discriminator for square images, NS loss",
          DCGANConfig, pixels="grey")
def build_dcgan(cfg: DCGANConfig, data: DataInfo) -> GAN:
    """The DCGAN of ``cfg`` for square-image ``data``."""
    side = _side(data)
    g = Deterministic(var=["x"], cond_var=["z"], net=DCGenerator(cfg.z_dim, side, cfg.channels, data.binary),
                      name="G")
    gen = (g * latent_prior(cfg)).marginalize_var("z")
    obj = NonSaturatingGAN(Empirical(var=["x"]), gen, DCDiscriminator(side, cfg.channels))
    return GAN(obj.mean(), gen, d_steps=cfg.d_steps, **optimizer_settings(cfg))
