"""A Bernoulli–Bernoulli RBM trained by CD-k or persistent CD (Hinton 2002; Tieleman 2008), evaluated by
its AIS test log-likelihood (Salakhutdinov & Murray 2008)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepgm.distributions import RBM, Gibbs
from deepgm.losses import ContrastiveDivergence
from deepgm.models.energy import RBMModel
from deepgm.zoo.options import at_least, between, non_negative, option
from deepgm.zoo.registry import DataInfo, register


@dataclass
class RBMConfig:
    """Options of the RBM (each a ``deepgm train rbm`` flag); SGD with momentum, as in Hinton's guide. Grey
    levels (e.g. the 8×8 digits) are binarised by Bernoulli draws; binarised MNIST passes as it is."""

    hidden_units: int = 500
    cd_k: int = 1  # Gibbs sweeps per negative sample
    persistent: bool = False  # PCD: chains carried over from step to step (a replay buffer, never reinitialised)
    chains: int = 1000  # PCD's persistent chains
    init_std: float = option(0.01, non_negative())
    lr: float = 0.05
    momentum: float = option(0.9, between(0, 1, open_hi=True))
    weight_decay: float = option(2e-4, non_negative())
    sample_sweeps: int = 1000  # Gibbs sweeps of `deepgm sample`
    ais_chains: int = 100
    # S&M (2008) used 14,500 (benchmarks/ebm.py does); 2,000 keeps `deepgm eval` short, the estimator is named
    ais_temperatures: int = option(2_000, at_least(3))


@register("rbm", "RBM: Bernoulli-Bernoulli, CD-k or PCD; test log-likelihood by AIS", RBMConfig)
def build_rbm(cfg: RBMConfig, data: DataInfo) -> RBMModel:
    """An RBM over the flat binary ``x`` of ``data`` with ``hidden_units`` hidden units."""
    rbm = RBM(["x"], visible=data.x_dim, hidden=cfg.hidden_units, init_std=cfg.init_std,
              sampler=Gibbs(steps=cfg.sample_sweeps))
    if cfg.persistent:
        loss = ContrastiveDivergence(rbm, init="buffer", steps=cfg.cd_k, capacity=cfg.chains, reinit_prob=0.0)
    else:
        loss = ContrastiveDivergence(rbm, init="data", steps=cfg.cd_k)
    return RBMModel(rbm, loss.mean(), ais_chains=cfg.ais_chains, ais_temperatures=cfg.ais_temperatures,
                    init_visible_bias=True, binarize=True, optimizer=torch.optim.SGD,
                    optimizer_params={"lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay})
