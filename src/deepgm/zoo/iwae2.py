"""Two-stochastic-layer VAE/IWAE (Burda et al. 2016, 784-200-200-100-100-50):
``p(x|z1) p(z1|z2) p(z2)`` with ``q(z1|x) q(z2|z1)``, trained on the importance-weighted bound ``L_k``
(``k=1``: the ELBO)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import Bernoulli, Distribution, Normal
from deepgm.losses import IWELBO
from deepgm.models import VAE
from deepgm.nn import MLP, LogitsHead, NormalHead
from deepgm.zoo.registry import DataInfo, register


@dataclass
class IWAE2Config:
    """Layer sizes of the two stochastic layers and the number of importance samples."""

    z1_dim: int = 100
    z2_dim: int = 50
    hidden1: tuple[int, ...] = (200, 200)
    hidden2: tuple[int, ...] = (100, 100)
    activation: str = "tanh"
    k: int = 5
    lr: float = 1e-3


@register("iwae2", "Two-stochastic-layer IWAE (784-200-200-100-100-50), L_k bound", IWAE2Config)
def build_iwae2(cfg: IWAE2Config, data: DataInfo) -> VAE:
    """The two-layer IWAE of ``cfg`` for ``data``."""
    a, h1, h2 = cfg.activation, list(cfg.hidden1), list(cfg.hidden2)
    q1 = Normal(var=["z1"], cond_var=["x"], name="q",
                net=NormalHead(MLP([data.x_dim, *h1], a, out_activation=a), h1[-1], cfg.z1_dim))
    q2 = Normal(var=["z2"], cond_var=["z1"], name="q",
                net=NormalHead(MLP([cfg.z1_dim, *h2], a, out_activation=a), h2[-1], cfg.z2_dim))
    p2 = Normal(var=["z1"], cond_var=["z2"], name="p",
                net=NormalHead(MLP([cfg.z2_dim, *h2[::-1]], a, out_activation=a), h2[0], cfg.z1_dim))
    p1 = Bernoulli(var=["x"], cond_var=["z1"], name="p", net=LogitsHead(MLP([cfg.z1_dim, *h1[::-1], data.x_dim], a)))
    prior = Normal(var=["z2"], loc=0.0, scale=1.0, features_shape=[cfg.z2_dim], name="p_{prior}")
    q = q1 * q2
    p = p1 * p2 * prior
    loss = -IWELBO(p, q, k=cfg.k).mean()
    return _TwoLayer(q, p1, prior, p2, loss=loss, lr=cfg.lr)


class _TwoLayer(VAE):
    """A VAE whose encoder, decoder and prior are joints: q(z1,z2|x), p(x|z1), p(z1|z2)p(z2)."""

    def __init__(self, q: Distribution, p1: Bernoulli, prior: Normal, p2: Normal, loss, lr: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(q, p1, p2 * prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": lr})

    def _z(self) -> str:
        return "z1"
