"""β-VAE (Higgins et al. 2017): ``mean(β D_KL[q(z|x)||p(z)] - E_q[log p(x|z)])``; with ``capacity_max > 0``
the capacity form of Burgess et al. (2018): ``γ |mean D_KL - C| - mean E_q[log p(x|z)]``, with ``C``
raised linearly from 0 to ``capacity_max`` nats over ``capacity_steps`` steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.losses import KL, E, LogProb, Parameter
from deepgm.models import VAE
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class BetaVAEConfig(VAEConfig):
    """The VAE's options, the weight β (or γ) and the capacity schedule."""

    beta: float = option(4.0, non_negative())
    capacity_max: float = option(0.0, non_negative())
    capacity_steps: int = 10000


@register("beta-vae", "β-VAE: β-weighted KL, or Burgess et al.'s γ|KL - C| with a rising capacity C", BetaVAEConfig)
def build_beta_vae(cfg: BetaVAEConfig, data: DataInfo) -> VAE:
    """The β-VAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    if cfg.capacity_max > 0:
        loss = cfg.beta * abs(KL(q, prior).mean() - Parameter("C")) - E(q, LogProb(p)).mean()

        def schedule(step: int) -> dict[str, float]:
            return {"C": cfg.capacity_max * min(1.0, step / max(cfg.capacity_steps, 1))}
    else:
        loss = (Parameter("beta") * KL(q, prior) - E(q, LogProb(p))).mean()

        def schedule(step: int) -> dict[str, float]:
            return {"beta": cfg.beta}

    return VAE(q, p, prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr},
               schedule=schedule)
