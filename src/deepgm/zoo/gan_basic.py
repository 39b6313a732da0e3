"""GANs with MLP generator and discriminator, one per adversarial objective of :mod:`deepgm.losses.gan`.

The generator is ``p_G(x) = ∫ δ(x - G(z)) N(z; 0, I) dz`` (``G`` ends in a sigmoid for data in [0, 1]);
the data side is ``p_data(x)``, the batch. Registered: ``gan`` (minimax, Goodfellow et al. 2014),
``ns-gan`` (non-saturating), ``kl-gan`` (``D_KL[p_G||p_data]`` via the log-ratio), ``wgan`` (weight
clipping, Arjovsky et al. 2017), ``wgan-gp`` (gradient penalty, Gulrajani et al. 2017), ``lsgan`` (Mao et
al. 2017), ``hinge-gan`` and ``f-gan`` (Nowozin et al. 2016). Each has ``minibatch_discrimination`` (Salimans
et al. 2016), the mode-collapse cure, as an option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import torch
from torch import nn

from deepgm.distributions import Deterministic, Distribution, Empirical, Normal
from deepgm.losses.adversarial import AdversarialLoss
from deepgm.losses.gan import (
    FGAN,
    KLGAN,
    HingeGAN,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    Wasserstein,
)
from deepgm.models.gan import GAN
from deepgm.nn import MLP, AsLoc, MinibatchDiscrimination
from deepgm.zoo.registry import DataInfo, register

__all__ = ["GANConfig", "WGANConfig", "WGANGPConfig", "FGANConfig", "generator_net", "latent_prior", "mlp_generator",
           "mlp_discriminator", "discriminator_with_classifier", "optimizer_settings", "OptimizerSettings",
           "build_mlp_gan"]


@dataclass
class GANConfig:
    """Options shared by the MLP GANs (each a ``deepgm train`` flag)."""

    z_dim: int = 16
    hidden: tuple[int, ...] = (256, 256)
    disc_hidden: tuple[int, ...] = (256, 256)
    lr: float = 2e-4
    disc_lr: float | None = None  # default: lr
    d_steps: int = 1
    minibatch_discrimination: bool = False
    mbd_kernels: int = 16


@dataclass
class WGANConfig(GANConfig):
    """WGAN: RMSProp, five critic steps per generator step, weights clipped to ``[-clip, clip]``."""

    lr: float = 5e-5
    d_steps: int = 5
    clip: float = 0.01


@dataclass
class WGANGPConfig(GANConfig):
    """WGAN-GP: Adam(β = 0, 0.9), five critic steps, penalty weight λ."""

    lr: float = 1e-4
    d_steps: int = 5
    gp_weight: float = 10.0


@dataclass
class FGANConfig(GANConfig):
    """f-GAN: which f-divergence."""

    divergence: Literal["kl", "reverse_kl", "pearson", "js"] = "js"


def generator_net(cfg: GANConfig, data: DataInfo, extra_in: int = 0) -> nn.Module:
    """``G: (z, extra) → {"loc": x}``, an MLP ending in a sigmoid for data in [0, 1]."""
    net = MLP([cfg.z_dim + extra_in, *cfg.hidden, data.x_dim], "relu")
    return AsLoc(net, nn.Sigmoid() if data.binary else None)


def latent_prior(cfg: GANConfig) -> Normal:
    """``p(z) = N(0, I)``."""
    return Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_z")


def mlp_generator(cfg: GANConfig, data: DataInfo) -> Distribution:
    """``p_G(x) = ∫ δ(x - G(z)) p(z) dz`` with an MLP ``G``."""
    g = Deterministic(var=["x"], cond_var=["z"], net=generator_net(cfg, data), name="G")
    return (g * latent_prior(cfg)).marginalize_var("z")


def mlp_discriminator(cfg: GANConfig, in_features: int, out: int = 1) -> nn.Module:
    """``D: x → out`` logits, leaky-ReLU MLP; with minibatch discrimination before the last layer."""
    h = list(cfg.disc_hidden)
    if not cfg.minibatch_discrimination:
        return MLP([in_features, *h, out], "leaky_relu")
    return nn.Sequential(MLP([in_features, *h], "leaky_relu", out_activation="leaky_relu"),
                         MinibatchDiscrimination(h[-1], cfg.mbd_kernels, 8), nn.Linear(h[-1] + cfg.mbd_kernels, out))


def discriminator_with_classifier(cfg: GANConfig, in_features: int, n_classes: int
                                  ) -> tuple[nn.Sequential, nn.Sequential]:
    """``(D, Q)``: a real/fake logit ``D(x)`` and class logits ``Q(x)`` on one shared leaky-ReLU MLP body
    (ACGAN's auxiliary classifier, InfoGAN's code posterior)."""
    h = list(cfg.disc_hidden)
    body = MLP([in_features, *h], "leaky_relu", out_activation="leaky_relu")
    return nn.Sequential(body, nn.Linear(h[-1], 1)), nn.Sequential(body, nn.Linear(h[-1], n_classes))


class OptimizerSettings(TypedDict):
    """``GAN``'s ``optimizer_params`` (the generator's) and ``d_optimizer_params`` (the discriminator's)."""

    optimizer_params: dict[str, Any]
    d_optimizer_params: dict[str, Any]


def optimizer_settings(cfg: GANConfig, betas: tuple[float, float] | None = (0.5, 0.999)) -> OptimizerSettings:
    """Both players' optimiser settings: ``lr`` (the discriminator's ``disc_lr``, default ``lr``) and Adam's
    ``betas`` (``None``: the optimiser has none, e.g. RMSProp)."""
    kw: dict[str, Any] = {} if betas is None else {"betas": betas}
    return {"optimizer_params": {"lr": cfg.lr, **kw}, "d_optimizer_params": {"lr": cfg.disc_lr or cfg.lr, **kw}}


_Make = Callable[[Distribution, Distribution, nn.Module], AdversarialLoss]


def build_mlp_gan(cfg: GANConfig, data: DataInfo, make: _Make,
                  optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
                  betas: tuple[float, float] | None = (0.5, 0.999)) -> GAN:
    """The GAN with objective ``make(p_data, p_G, D)`` (e.g. ``MinimaxGAN``) for ``data``."""
    gen = mlp_generator(cfg, data)
    obj = make(Empirical(var=["x"]), gen, mlp_discriminator(cfg, data.x_dim))
    return GAN(obj.mean(), gen, d_steps=cfg.d_steps, optimizer=optimizer, d_optimizer=optimizer,
               **optimizer_settings(cfg, betas))


@register("gan", "GAN: the minimax game, D by logistic regression (2 JS - log 4)", GANConfig, pixels="grey")
def build_gan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The minimax GAN."""
    return build_mlp_gan(cfg, data, MinimaxGAN)


@register("ns-gan", "NS-GAN: GAN with the non-saturating generator loss -log D(G(z))", GANConfig, pixels="grey")
def build_ns_gan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The non-saturating GAN."""
    return build_mlp_gan(cfg, data, NonSaturatingGAN)


@register("kl-gan", "KL-GAN: the generator minimises KL[p_G||p_data] ≈ E[-D] with D = log p_data/p_G",
          GANConfig, pixels="grey")
def build_kl_gan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The GAN minimising the reverse KL through the log-ratio."""
    return build_mlp_gan(cfg, data, KLGAN)


@register("wgan", "WGAN: Wasserstein critic with weight clipping, RMSProp", WGANConfig, pixels="grey")
def build_wgan(cfg: WGANConfig, data: DataInfo) -> GAN:
    """The weight-clipped WGAN."""
    return build_mlp_gan(cfg, data, lambda p, q, d: Wasserstein(p, q, d, clip=cfg.clip),
                         optimizer=torch.optim.RMSprop, betas=None)


@register("wgan-gp", "WGAN-GP: Wasserstein critic with the gradient penalty at interpolates", WGANGPConfig,
          pixels="grey")
def build_wgan_gp(cfg: WGANGPConfig, data: DataInfo) -> GAN:
    """WGAN with gradient penalty."""
    return build_mlp_gan(cfg, data, lambda p, q, d: Wasserstein(p, q, d, gp_weight=cfg.gp_weight),
                         betas=(0.0, 0.9))


@register("lsgan", "LSGAN: least-squares discriminator (a=0, b=c=1)", GANConfig, pixels="grey")
def build_lsgan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The least-squares GAN."""
    return build_mlp_gan(cfg, data, LeastSquaresGAN)


@register("hinge-gan", "Hinge GAN: hinge loss for D, -D(G(z)) for G", GANConfig, pixels="grey")
def build_hinge_gan(cfg: GANConfig, data: DataInfo) -> GAN:
    """The hinge-loss GAN."""
    return build_mlp_gan(cfg, data, HingeGAN)


@register("f-gan", "f-GAN: variational f-divergence (kl, reverse_kl, pearson, js)", FGANConfig, pixels="grey")
def build_f_gan(cfg: FGANConfig, data: DataInfo) -> GAN:
    """The f-GAN for ``cfg.divergence``."""
    return build_mlp_gan(cfg, data, lambda p, q, d: FGAN(p, q, d, cfg.divergence))
