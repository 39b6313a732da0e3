"""FactorVAE (Kim & Mnih 2018): ``mean(D_KL[q(z|x)||p(z)] - E_q[log p(x|z)]) + γ TC`` where the total
correlation ``TC = D_KL[q(z)||Π_j q(z_j)]`` is estimated by the density-ratio trick: a discriminator,
trained with its own optimiser by logistic regression, tells draws of ``q(z)`` from draws with each
dimension shuffled across the batch; its logit estimates ``log q(z)/Π_j q(z_j)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.losses import DensityRatio
from deepgm.models import VAE, AuxiliaryObjective
from deepgm.nn import MLP
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class FactorVAEConfig(VAEConfig):
    """The VAE's options, γ, and the discriminator's width and learning rate."""

    gamma: float = option(10.0, non_negative())
    disc_hidden: tuple[int, ...] = (256, 256)
    disc_lr: float = 1e-4


@register("factor-vae", "FactorVAE: ELBO plus γ × total correlation by a density-ratio discriminator", FactorVAEConfig)
def build_factor_vae(cfg: FactorVAEConfig, data: DataInfo) -> VAE:
    """The FactorVAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    disc = MLP([cfg.z_dim, *cfg.disc_hidden, 1], "leaky_relu")
    tc = DensityRatio(q, disc, permute_dims=True)
    aux = AuxiliaryObjective(tc.discriminator_loss(), optimizer=torch.optim.Adam,
                             optimizer_params={"lr": cfg.disc_lr, "betas": (0.5, 0.9)}, name="discriminator")
    return VAE(q, p, prior, regularizer=cfg.gamma * tc.mean(), optimizer=torch.optim.Adam,
               optimizer_params={"lr": cfg.lr}, auxiliary=[aux])
