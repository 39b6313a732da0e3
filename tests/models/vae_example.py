"""The seed's VAE exactly as the README shows it, and the same model hand-written in PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepgm.distributions import Bernoulli, Normal
from deepgm.losses import KL, E, LogProb


class Encoder(Normal):  # q(z|x)
    def __init__(self, d: int = 784, h: int = 400, z: int = 20) -> None:
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.h = nn.Sequential(nn.Linear(d, h), nn.ReLU())
        self.loc, self.scale = nn.Linear(h, z), nn.Linear(h, z)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.h(x)
        return {"loc": self.loc(h), "scale": F.softplus(self.scale(h))}


class Decoder(Bernoulli):  # p(x|z)
    def __init__(self, d: int = 784, h: int = 400, z: int = 20) -> None:
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Sequential(nn.Linear(z, h), nn.ReLU(), nn.Linear(h, d))

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(z)}


def build(d: int = 784, h: int = 400, z: int = 20):
    q, p = Encoder(d, h, z), Decoder(d, h, z)
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[z], name="p_{prior}")
    loss = (KL(q, prior) - E(q, LogProb(p))).mean()
    return q, p, prior, loss


def hand_written_loss(q: Encoder, p: Decoder, x: torch.Tensor) -> torch.Tensor:
    """The same VAE as a PyTorch user writes it (reusing the modules' weights)."""
    h = q.h(x)
    mu, sd = q.loc(h), F.softplus(q.scale(h))
    z = mu + sd * torch.randn_like(mu)
    logits = p.net(z)
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    kl = 0.5 * (sd**2 + mu**2 - 1 - torch.log(sd**2)).sum(-1)
    return (kl - rec).mean()
