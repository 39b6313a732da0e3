"""Conditional VAE (Sohn et al. 2015): ``mean(D_KL[q(z|x,y)||p(z)] - E_{q(z|x,y)}[log p(x|z,y)])`` with
labels ``y``; ``generate(n, y=labels)`` draws images of chosen classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions import Bernoulli, Normal
from deepgm.models import VAE
from deepgm.nn import MLP, LogitsHead, NormalHead
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.vae import VAEConfig


class WithLabels(nn.Module):
    """Calls ``net`` on its inputs with the label input (class indices or one-hot) as a one-hot vector."""

    def __init__(self, net: nn.Module, n_classes: int, label_position: int) -> None:
        super().__init__()
        self.net, self.n_classes, self.label_position = net, n_classes, label_position

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = list(inputs)
        y = parts[self.label_position]
        if not y.is_floating_point():
            parts[self.label_position] = F.one_hot(y, self.n_classes).to(parts[0].dtype)
        return self.net(*parts)


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
    q = Normal(var=["z"], cond_var=["x", "y"], name="q", net=WithLabels(enc, k, 1))
    dec = LogitsHead(MLP([cfg.z_dim + k, *h[::-1], data.x_dim], cfg.activation))
    p = Bernoulli(var=["x"], cond_var=["z", "y"], name="p", net=WithLabels(dec, k, 1))
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    return VAE(q, p, prior, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
