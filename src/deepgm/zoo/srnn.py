"""Stochastic RNN (Fraccaro, Sønderby, Paquet & Winther 2016): a deterministic GRU layer ``d_t`` over the
past inputs, a latent chain ``z_t`` on top, and a smoothing posterior over a backward RNN ``a_t``:

    p(x, z | d) = Π_t p(x_t | z_t, d_t) p(z_t | z_{t-1}, d_t),   d_t = GRU(x_{t-1}, d_{t-1})
    q(z | x) = Π_t q(z_t | z_{t-1}, a_t),   a_t = RNN_backward([d_t, x_t], a_{t+1})

    ELBO = E_{d, a} [ Σ_t E_q [log p(x_t | z_t, d_t)] - β D_KL[q(z_t | z_{t-1}, a_t) || p(z_t | z_{t-1}, d_t)] ]

(without the paper's residual posterior parameterisation); or the IWAE / FIVO bound (``objective``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.distributions import Bernoulli, Deterministic, Normal
from deepgm.losses import KL, E, IterativeLoss, LogProb, Loss, Parameter, SMCBound
from deepgm.models import SequenceModel, generate_sequences
from deepgm.nn import MLP, BackwardRNN, ForwardRNN, LogitsHead, NormalHead, RNNStep
from deepgm.zoo.options import at_least, between, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.sequence_common import (
    CLIP_GRAD_NORM,
    anneal,
    scan_options,
    sequence_objective,
    shaped_output,
    weighted,
)


@dataclass
class SRNNConfig:
    """Options of the SRNN (each a ``deepgm train srnn`` flag)."""

    d_dim: int = 128  # deterministic forward GRU
    a_dim: int = 128  # backward RNN of the posterior
    z_dim: int = 32
    hidden: int = 128  # the MLPs of prior, posterior and emission
    objective: Literal["elbo", "iwae", "fivo"] = "elbo"
    particles: int = 4
    lr: float = 1e-3
    anneal_steps: int = option(0, at_least(0))  # β from min_anneal to 1 over these many steps (0: none)
    min_anneal: float = option(0.2, between(0.0, 1.0))


@register("srnn", "Stochastic RNN: latent chain on a deterministic GRU, smoothing posterior", SRNNConfig,
          sequences=True)
def build_srnn(cfg: SRNNConfig, data: DataInfo) -> SequenceModel:
    """The SRNN of ``cfg`` for binary sequences described by ``data``."""
    x, z, d_dim, a_dim, hid = data.x_dim, cfg.z_dim, cfg.d_dim, cfg.a_dim, cfg.hidden
    forward = ForwardRNN(x, d_dim, shift=True)
    det = Deterministic(var=["d"], cond_var=["x"], net=forward, name="f_d")
    backward = Deterministic(var=["a"], cond_var=["d", "x", "mask"], net=BackwardRNN(d_dim + x, a_dim, "tanh"),
                             name="f_a")
    prior = Normal(var=["z"], cond_var=["z_prev", "d"], name="p",
                   net=NormalHead(MLP([z + d_dim, hid], "relu", out_activation="relu"), hid, z))
    q = Normal(var=["z"], cond_var=["z_prev", "a"], name="q",
               net=NormalHead(MLP([z + a_dim, hid], "relu", out_activation="relu"), hid, z))
    emitter = Bernoulli(var=["x"], cond_var=["z", "d"], name="p", event_ndim=len(data.x_shape),
                        net=LogitsHead(shaped_output(data, MLP([z + d_dim, hid, x], "relu"))))
    scan = scan_options(series=["x", "d", "a"], update={"z": "z_prev"}, initial={"z_prev": torch.zeros(z)})

    def elbo(beta: Loss | float) -> Loss:
        step = E(q, LogProb(emitter)) - weighted(beta, KL(q, prior))
        return E(det, E(backward, IterativeLoss(step, **scan)))

    def bound(k: int, resample: Literal["systematic", "never"]) -> Loss:
        log_weight = E(q, LogProb(emitter) + LogProb(prior) - LogProb(q))
        return E(det, E(backward, SMCBound(log_weight, k, resample=resample, **scan)))

    d_step = Deterministic(var=["d"], cond_var=["x_prev", "d_prev"], net=RNNStep(forward), name="f_d")
    beta: Loss | float = Parameter("beta") if cfg.anneal_steps > 0 else 1.0
    return SequenceModel(
        sequence_objective(cfg.objective, elbo(beta), bound, cfg.particles), [det, backward, prior, q, emitter],
        elbo=elbo(1.0), bounds={"smc": lambda k: bound(k, "systematic"), "iwae": lambda k: bound(k, "never")},
        sampler=lambda n, length: generate_sequences(
            [d_step, prior, emitter], n, length, {"x": "x_prev", "d": "d_prev", "z": "z_prev"},
            {"x_prev": torch.zeros(data.x_shape), "d_prev": torch.zeros(d_dim), "z_prev": torch.zeros(z)},
            keep=["x"])["x"],
        optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr}, clip_grad_norm=CLIP_GRAD_NORM,
        schedule=anneal(cfg.anneal_steps, cfg.min_anneal) if cfg.anneal_steps > 0 else None,
    )
