"""DIP-VAE (Kumar et al. 2018): the VAE objective plus a penalty pushing the covariance of the aggregate
posterior to the identity: ``λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii - 1)²`` (type I: C = Cov[μ(x)];
type II: C = Cov[μ(x)] + E[diag σ²(x)])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.losses import DIPCovariance
from deepgm.models import VAE
from deepgm.zoo.options import non_negative, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class DIPVAEConfig(VAEConfig):
    """The VAE's options, the DIP type and its two weights."""

    kind: Literal["i", "ii"] = "i"
    lambda_od: float = option(10.0, non_negative())
    lambda_d: float = option(100.0, non_negative())


@register("dip-vae", "DIP-VAE I/II: ELBO plus a penalty on the aggregate posterior's covariance", DIPVAEConfig)
def build_dip_vae(cfg: DIPVAEConfig, data: DataInfo) -> VAE:
    """The DIP-VAE of ``cfg`` for ``data``."""
    q, p, prior = vae_parts(cfg, data)
    reg = DIPCovariance(q, kind=cfg.kind, lambda_od=cfg.lambda_od, lambda_d=cfg.lambda_d)
    return VAE(q, p, prior, regularizer=reg, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
