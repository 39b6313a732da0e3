"""JEM (Grathwohl et al. 2019, "Your classifier is secretly an energy based model"): a classifier ``f(x)``
with ``K`` logits is both ``p(y|x) = softmax(f(x))`` and the energy-based model ``p(x) ∝ exp(-E(x))``,
``E(x) = -logsumexp_y f(x)[y]`` — one network. The objective is ``-log p(x, y) = -log p(y|x) - log p(x)``:

    mean(-log p(y|x) + E_p(x) - E_p(sg[x~PCD-k]) + α (E_p(x)² + E_p(x~)²))

the cross-entropy of the labelled batch plus maximum likelihood of ``p(x)`` by persistent contrastive
divergence (SGLD chains in a replay buffer, ``reinit_prob`` of them restarted from uniform noise), with
the energy-magnitude regulariser ``α`` of Du & Mordatch (2019) as a stabiliser. On images in [0, 1]
(MNIST) the chains take decoupled SGLD steps ``x ← x - 2 clip(∇E(x), ±0.03) + 0.005 ξ`` (``ε = 4``, the
paper's noise 0.01 on [-1, 1] images is 0.005 on [0, 1]), states kept in [0, 1]: a short sweep of the
step (600 training steps on MNIST, FID of 500 buffer draws) gave ``ε`` = 1: 629, 2: 79, 4: 55, 8: 121,
while the EBM zoo model's ``ε = 20`` left speckle noise. Elsewhere exact Langevin (``ε = 0.01``).
``px_weight = 0`` leaves the plain classifier (the baseline of JEM's calibration claim).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepgm.distributions import Categorical, EnergyDistribution, Langevin
from deepgm.losses import ContrastiveDivergence, LogProb, Loss
from deepgm.models.energy import JEMModel
from deepgm.nn import MLP, LogitsHead
from deepgm.zoo.options import between, non_negative, option, positive
from deepgm.zoo.registry import DataInfo, register

__all__ = ["JEMConfig", "ClassifierEnergy", "build_jem"]


@dataclass
class JEMConfig:
    """Options of JEM (each a ``deepgm train jem`` flag). Step sizes left at None take the data's defaults
    (the module docstring)."""

    hidden: tuple[int, ...] = (256, 256)  # the classifier: an MLP with SiLU activations (smooth, for SGLD)
    mcmc_steps: int = 20  # SGLD steps per training step
    sample_steps: int = 100  # SGLD steps of `deepgm sample` / evaluation, from the replay buffer
    step_size: float | None = option(None, positive())
    noise_scale: float | None = option(None, non_negative())
    buffer_size: int = 10_000
    reinit_prob: float = option(0.05, between(0, 1))
    alpha: float = option(0.1, non_negative())  # α (E(x)² + E(x̃)²): keeps the energies' scale bounded
    px_weight: float = 1.0  # weight of -log p(x) (the CD term); 0: a plain classifier
    init_range: float = option(4.0, positive())  # fresh chains start uniform in [-r, r] (non-image data)
    ece_bins: int = 15  # equal-width confidence bins of the test ECE
    lr: float = 1e-3


class ClassifierEnergy(nn.Module):
    """``E(x) = -logsumexp_y f(x)[y]``: the logits network ``f`` of a classifier read as an energy.

    >>> f = nn.Linear(2, 3)
    >>> x = torch.randn(4, 2)
    >>> bool(torch.allclose(ClassifierEnergy(f)(x), -torch.logsumexp(f(x), -1)))
    True
    """

    def __init__(self, logits: nn.Module) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(self.logits(x), dim=-1)


@register("jem", "JEM: a classifier read as an energy model, E(x) = -logsumexp_y f(x)[y]; cross-entropy + SGLD PCD; "
          "accuracy, calibration (ECE), samples", JEMConfig, needs_labels=True, pixels="grey")
def build_jem(cfg: JEMConfig, data: DataInfo) -> JEMModel:
    """The classifier ``f`` (an MLP over flat ``x``), ``p(y|x)`` and ``p(x)`` on it, and the JEM objective."""
    if not data.n_classes or data.n_classes < 2:
        raise ValueError(f"jem is a classifier: it needs a labelled dataset of at least 2 classes (e.g. mnist); "
                         f"{data.name!r} has {data.n_classes or 'no'} classes")
    k = data.n_classes
    f = nn.Sequential(nn.Flatten(), MLP([data.x_dim, *cfg.hidden, k], act="silu"))
    if data.binary:  # images in [0, 1]
        step = cfg.step_size or 4.0
        noise = 0.005 if cfg.noise_scale is None else cfg.noise_scale
        sampler = Langevin(steps=cfg.mcmc_steps, step_size=step, noise_scale=noise, clip_grad=0.03,
                           bounds=(0.0, 1.0))
        bounds = (0.0, 1.0)
    else:
        sampler = Langevin(steps=cfg.mcmc_steps, step_size=cfg.step_size or 0.01, noise_scale=cfg.noise_scale)
        bounds = (-cfg.init_range, cfg.init_range)
    p_x = EnergyDistribution(var=["x"], energy=ClassifierEnergy(f), event_shape=data.x_shape, sampler=sampler,
                             init="uniform", init_bounds=bounds, name="p")
    p_y = Categorical(var=["y"], cond_var=["x"], features_shape=[k], net=LogitsHead(f), name="p")
    loss: Loss = -LogProb(p_y)
    if cfg.px_weight > 0:
        cd = ContrastiveDivergence(p_x, init="buffer", capacity=cfg.buffer_size, reinit_prob=cfg.reinit_prob,
                                   alpha=cfg.alpha)
        loss = loss + (cd if cfg.px_weight == 1 else cfg.px_weight * cd)
    return JEMModel(p_x, p_y, loss.mean(), sampler=sampler.with_steps(cfg.sample_steps), ece_bins=cfg.ece_bins,
                    optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})
