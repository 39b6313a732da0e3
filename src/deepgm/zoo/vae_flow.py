"""VAE with normalising flows in the posterior (Rezende & Mohamed 2015; Kingma et al. 2016):
``q(z|x)`` is a Normal followed by planar, radial or IAF layers conditioned on ``x``; the KL is
estimated by Monte Carlo from q's own samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.flows import flow_posterior
from deepgm.models import VAE
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig, vae_parts


@dataclass
class VAEFlowConfig(VAEConfig):
    """Options of the VAE with a flow posterior (each a ``deepgm train vae-flow`` flag)."""

    flow: Literal["planar", "radial", "iaf"] = "planar"
    n_flows: int = 4
    context_dim: int = 16


@register("vae-flow", "VAE with a planar/radial/IAF flow posterior q(z|x)", VAEFlowConfig)
def build_vae_flow(cfg: VAEFlowConfig, data: DataInfo) -> VAE:
    """The VAE of ``cfg`` whose encoder is ``flow_posterior``."""
    _, p, prior = vae_parts(cfg, data)
    q = flow_posterior(data.x_dim, cfg.z_dim, cfg.flow, cfg.n_flows, cfg.hidden, cfg.context_dim, cfg.activation)
    return VAE(q, p, prior, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
