"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder for GANs. The discriminator tells
``(x, z)`` pairs of the data side, ``q(x, z) = p_data(x) q(z|x)``, from those of the generator side,
``p(x, z) = p(z) δ(x - G(z))``; at the optimum the two joints agree, so ``q(z|x)`` inverts ``G``. ALI's
encoder is Gaussian (reparameterised); ``deterministic_encoder=true`` gives BiGAN's ``z = E(x)``.
Both players use the non-saturating loss (labels swapped for the generator and the encoder)."""

from __future__ import annotations

from dataclasses import dataclass

from deepgm.distributions import Deterministic, Empirical, Normal
from deepgm.losses.gan import NonSaturatingGAN
from deepgm.models.gan import GAN
from deepgm.nn import MLP, AsLoc, Concat, NormalHead
from deepgm.zoo.gan_basic import GANConfig, generator_net, latent_prior, mlp_discriminator, optimizer_settings
from deepgm.zoo.registry import DataInfo, register

__all__ = ["BiGANConfig", "build_bigan"]


@dataclass
class BiGANConfig(GANConfig):
    """BiGAN/ALI: a deterministic (BiGAN) or Gaussian (ALI) encoder."""

    deterministic_encoder: bool = False


@register("bigan", "BiGAN/ALI: D(x, z) tells p_data(x)q(z|x) from p(z)p(x|z); learns an encoder",
          BiGANConfig, pixels="grey")
def build_bigan(cfg: BiGANConfig, data: DataInfo) -> GAN:
    """BiGAN/ALI of ``cfg`` for ``data``."""
    h = list(cfg.hidden)
    enc: Normal | Deterministic
    if cfg.deterministic_encoder:
        enc = Deterministic(var=["z"], cond_var=["x"], net=AsLoc(MLP([data.x_dim, *h, cfg.z_dim], "relu")), name="q")
    else:
        body = MLP([data.x_dim, *h], "relu", out_activation="relu")
        enc = Normal(var=["z"], cond_var=["x"], net=NormalHead(body, h[-1], cfg.z_dim), name="q")
    g = Deterministic(var=["x"], cond_var=["z"], net=generator_net(cfg, data), name="G")
    gen = g * latent_prior(cfg)  # p(x, z)
    data_side = Empirical(var=["x"]) * enc  # q(x, z)
    disc = Concat(mlp_discriminator(cfg, data.x_dim + cfg.z_dim))
    obj = NonSaturatingGAN(data_side, gen, disc)
    return GAN(obj.mean(), gen, distributions=[gen, enc], x_var="x", d_steps=cfg.d_steps,
               **optimizer_settings(cfg))
