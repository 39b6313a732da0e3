"""An energy-based model ``p(x) ∝ exp(-E(x))``, ``E`` an MLP, trained by a chosen objective: persistent
contrastive divergence with a replay buffer (Du & Mordatch 2019, the default), CD-k from the data,
short-run MCMC from noise, exact / sliced / denoising score matching, or noise-contrastive estimation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepgm.distributions import EnergyDistribution, Langevin, Normal
from deepgm.losses import NCE, ContrastiveDivergence, DenoisingScoreMatching, Loss, ScoreMatching
from deepgm.models.energy import EnergyModel
from deepgm.nn import MLP
from deepgm.zoo.options import at_least, between, non_negative, option, positive
from deepgm.zoo.registry import DataInfo, register

Objective = Literal["pcd", "cd", "short-run", "sm", "ssm", "dsm", "nce"]


@dataclass
class EBMConfig:
    """Options of the EBM (each a ``deepgm train ebm`` flag). Step sizes left at None take the data's
    defaults: on images in [0, 1] (``binary`` data) a decoupled step (ε/2 = 10, noise 0.005, gradient
    entries clipped to 0.03, states kept in [0, 1]); elsewhere exact Langevin (ε = 0.01, noise √ε)."""

    hidden: tuple[int, ...] = (128, 128)
    objective: Objective = "pcd"
    mcmc_steps: int = 40  # Langevin steps per training step (CD objectives)
    sample_steps: int = 200  # Langevin steps of `deepgm sample` (from the replay buffer when trained with one)
    step_size: float | None = option(None, positive())
    noise_scale: float | None = option(None, non_negative())
    buffer_size: int = 10_000
    reinit_prob: float = option(0.05, between(0, 1))
    alpha: float = option(0.1, non_negative())  # α (E(x)² + E(x̃)²): keeps the energies' scale bounded
    init_range: float = option(4.0, positive())  # fresh chains start uniform in [-r, r] (non-image data)
    noise_std: float = option(0.1, positive())  # denoising score matching's σ
    nce_noise_std: float = option(3.0, positive())  # NCE's noise N(0, s² I)
    nce_nu: int = option(1, at_least(1))  # NCE's noise draws per data point
    lr: float = 1e-3


class EnergyMLP(nn.Module):
    """``E(x) = MLP(flatten(x))`` with SiLU activations (smooth: score matching needs second derivatives)."""

    def __init__(self, dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = MLP([dim, *hidden, 1], act="silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), -1))[:, 0]


def _objective(cfg: EBMConfig, p: EnergyDistribution, dim: int) -> Loss:
    cd = {"pcd": "buffer", "cd": "data", "short-run": "noise"}
    if cfg.objective in cd:
        return ContrastiveDivergence(p, init=cd[cfg.objective], capacity=cfg.buffer_size,  # type: ignore[arg-type]
                                     reinit_prob=cfg.reinit_prob, alpha=cfg.alpha).mean()
    if cfg.objective in ("sm", "ssm"):
        return ScoreMatching(p, method="exact" if cfg.objective == "sm" else "sliced").mean()
    if cfg.objective == "dsm":
        return DenoisingScoreMatching(p, cfg.noise_std).mean()
    noise = Normal(var=["x"], loc=0.0, scale=cfg.nce_noise_std, features_shape=[dim], name="q")
    return NCE(p, noise, cfg.nce_nu).mean()


@register("ebm", "EBM: an MLP energy trained by PCD with a replay buffer (or CD, score matching, NCE); 2-D toys, "
          "MNIST", EBMConfig, pixels="grey")
def build_ebm(cfg: EBMConfig, data: DataInfo) -> EnergyModel:
    """The energy ``E(x)`` over flat ``x`` of ``data``, its Langevin sampler and the chosen objective."""
    d = data.x_dim
    if data.binary:  # images in [0, 1]
        step, noise = cfg.step_size or 20.0, 0.005 if cfg.noise_scale is None else cfg.noise_scale
        sampler = Langevin(steps=cfg.mcmc_steps, step_size=step, noise_scale=noise, clip_grad=0.03,
                           bounds=(0.0, 1.0))
        init, bounds = "uniform", (0.0, 1.0)
    else:
        step = cfg.step_size or 0.01
        sampler = Langevin(steps=cfg.mcmc_steps, step_size=step, noise_scale=cfg.noise_scale)
        init, bounds = "uniform", (-cfg.init_range, cfg.init_range)
    p = EnergyDistribution(var=["x"], energy=EnergyMLP(d, cfg.hidden), event_shape=[d], sampler=sampler,
                           init=init, init_bounds=bounds, name="p",
                           log_normalizer="learn" if cfg.objective == "nce" else None)
    loss = _objective(cfg, p, d)
    return EnergyModel(p, loss, sampler=sampler.with_steps(cfg.sample_steps), optimizer=torch.optim.Adam,
                       optimizer_params={"lr": cfg.lr})


