"""β-TCVAE (Chen et al. 2018): the ELBO with the total correlation of the aggregate posterior weighted
by β: ``mean(D_KL[q(z|x)||p(z)] - E_q[log p(x|z)]) + (β - 1) TC[q(z)]`` (minibatch-weighted sampling)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.losses import TotalCorrelation
from deepgm.models import VAE
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class BetaTCVAEConfig(VAEConfig):
    """The VAE's options, β, and the training-set size N the estimator needs."""

    beta: float = option(6.0, non_negative())
    dataset_size: int = 50000


@register("beta-tcvae", "β-TCVAE: ELBO plus (β-1) × total correlation of the aggregate posterior", BetaTCVAEConfig)
def build_beta_tcvae(cfg: BetaTCVAEConfig, data: DataInfo) -> VAE:
    """The β-TCVAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    reg = (cfg.beta - 1) * TotalCorrelation(q, cfg.dataset_size)
    return VAE(q, p, prior, regularizer=reg, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
