"""IWAE (Burda et al. 2016): maximise ``L_k = E[log (1/k) Σ_k p(x,z_k)/q(z_k|x)]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.losses import IWELBO
from deepgm.models import VAE
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class IWAEConfig(VAEConfig):
    """Options of the IWAE: the VAE's, the number of importance samples and the gradient estimator."""

    k: int = 5
    estimator: Literal["plain", "dreg"] = "plain"


@register("iwae", "IWAE: importance-weighted bound with k samples (plain or DReG gradients)", IWAEConfig)
def build_iwae(cfg: IWAEConfig, data: DataInfo) -> VAE:
    """The IWAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    loss = -IWELBO(p * prior, q, k=cfg.k, estimator=cfg.estimator).mean()
    return VAE(q, p, prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
