"""Conditional VAE (Sohn et al. 2015): ``mean(D_KL[q(z|x,y)||p(z)] - E_{q(z|x,y)}[log p(x|z,y)])`` with
labels ``y``; ``generate(n, y=labels)`` draws images of chosen classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import Bernoulli, Normal
from deepgm.models import VAE
from deepgm.nn import MLP, LogitsHead, NormalHead, OneHotInputs
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig


@dataclass
class CVAEConfig(VAEConfig):
    """The VAE's options; the number of classes comes from the data."""


@register("cvae", "Conditional VAE: encoder and decoder conditioned on the label y", CVAEConfig, needs_labels=True)
def build_cvae(cfg: CVAEConfig, data: DataInfo) -> VAE:
    """The CVAE of ``cfg`` for labelled ``data``."""
    if not data.n_classes:
        raise ValueError("cvae needs a labelled dataset")
    k, h = data.n_classes, list(cfg.hidden)
    enc = NormalHead(MLP([data.x_dim + k, *h], cfg.activation, out_activation=cfg.activation), h[-1], cfg.z_dim)
    q = Normal(var=["z"], cond_var=["x", "y"], name="q", net=OneHotInputs(enc, k, (1,)))
    dec = LogitsHead(MLP([cfg.z_dim + k, *h[::-1], data.x_dim], cfg.activation))
    p = Bernoulli(var=["x"], cond_var=["z", "y"], name="p", net=OneHotInputs(dec, k, (1,)))
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    return VAE(q, p, prior, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
