"""InfoVAE / MMD-VAE (Zhao et al. 2019): ``mean(-E_q[log p(x|z)] + (1-α) D_KL[q(z|x)||p(z)])
+ (α + λ - 1) MMD²[q(z), p(z)]`` with the aggregate posterior ``q(z)`` over the batch; α=1 is the
MMD-VAE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.losses import KL, MMD, E, LogProb
from deepgm.models import VAE
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class InfoVAEConfig(VAEConfig):
    """The VAE's options, InfoVAE's α and λ, and the MMD kernel."""

    alpha: float = 1.0
    lambda_: float = option(1000.0, non_negative())
    kernel: Literal["gaussian", "imq"] = "imq"


@register("infovae", "InfoVAE / MMD-VAE: MMD between the aggregate posterior and the prior", InfoVAEConfig)
def build_infovae(cfg: InfoVAEConfig, data: DataInfo) -> VAE:
    """The InfoVAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    loss = (-E(q, LogProb(p))).mean() + (cfg.alpha + cfg.lambda_ - 1) * MMD(q, prior, kernel=cfg.kernel)
    if cfg.alpha != 1.0:
        loss = loss + (1 - cfg.alpha) * KL(q, prior).mean()
    return VAE(q, p, prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
