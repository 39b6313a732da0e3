"""Moment matching. ``gmmn`` (Li, Swersky & Zemel 2015): the generator minimises ``MMD²`` between its draws
and the batch with a mixture of Gaussian kernels; no discriminator. ``mmd-gan`` (Li et al. 2017): the
kernel acts on ``[x, φ(x)]`` with features ``φ`` learned adversarially to maximise the MMD (weights
clipped), so the kernel follows what still differs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import Empirical
from deepgm.losses.mmd import MMDMixture
from deepgm.models.gan import GAN
from deepgm.nn import MLP
from deepgm.zoo.gan_basic import GANConfig, mlp_generator, optimizer_settings
from deepgm.zoo.registry import DataInfo, register

__all__ = ["GMMNConfig", "MMDGANConfig", "build_gmmn", "build_mmd_gan"]


@dataclass
class GMMNConfig(GANConfig):
    """GMMN: the kernel bandwidths, relative to the batch's median-heuristic bandwidth."""

    lr: float = 1e-3
    bandwidths: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class MMDGANConfig(GMMNConfig):
    """MMD-GAN: the feature dimension, clipping and critic steps."""

    lr: float = 5e-4
    feature_dim: int = 16
    clip: float = 0.05
    d_steps: int = 5


@register("gmmn", "GMMN: the generator minimises MMD² (mixture of Gaussian kernels) to the data", GMMNConfig,
          pixels="grey")
def build_gmmn(cfg: GMMNConfig, data: DataInfo) -> GAN:
    """The generative moment-matching network."""
    gen = mlp_generator(cfg, data)
    loss = MMDMixture(Empirical(var=["x"]), gen, bandwidths=cfg.bandwidths)
    return GAN(loss, gen, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})


@register("mmd-gan", "MMD-GAN: MMD² on learned kernel features φ(x), φ trained to maximise it", MMDGANConfig,
          pixels="grey")
def build_mmd_gan(cfg: MMDGANConfig, data: DataInfo) -> GAN:
    """MMD-GAN with an MLP feature critic."""
    gen = mlp_generator(cfg, data)
    phi = MLP([data.x_dim, *cfg.disc_hidden, cfg.feature_dim], "leaky_relu")
    loss = MMDMixture(Empirical(var=["x"]), gen, phi, bandwidths=cfg.bandwidths, clip=cfg.clip)
    return GAN(loss, gen, d_steps=cfg.d_steps, **optimizer_settings(cfg, (0.5, 0.9)))
