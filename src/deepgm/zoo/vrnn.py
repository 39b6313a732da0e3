"""Variational RNN (Chung et al. 2015): a latent ``z_t`` at every step of an LSTM.

With the LSTM's state ``(h, c)`` carried over time and features ``φ_x(x_t)``, ``φ_z(z_t)``:

    p(z_t | h) · p(x_t | φ_z(z_t), h),   q(z_t | φ_x(x_t), h),   (h', c') = LSTM([φ_x(x_t), φ_z(z_t)], (h, c))

    ELBO = Σ_t E_q [log p(x_t | φ_z(z_t), h)] - β D_KL[q(z_t | φ_x(x_t), h) || p(z_t | h)]

trained by this ELBO (β annealed), or by the sequence IWAE or FIVO bound with ``particles`` particles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from deepgm.distributions import Bernoulli, Deterministic, MultiDeterministic, Normal
from deepgm.losses import KL, E, IterativeLoss, LogProb, Loss, Parameter, SMCBound
from deepgm.models import SequenceModel, generate_sequences
from deepgm.nn import MLP, AsLoc, LogitsHead, LSTMStep, NormalHead
from deepgm.zoo.options import at_least, between, option
from deepgm.zoo.registry import DataInfo, register
from deepgm.zoo.sequence_common import (
    CLIP_GRAD_NORM,
    anneal,
    flat_input,
    scan_options,
    sequence_objective,
    shaped_output,
    weighted,
)


@dataclass
class VRNNConfig:
    """Options of the VRNN (each a ``deepgm train vrnn`` flag)."""

    h_dim: int = 128  # LSTM state
    z_dim: int = 32
    feature_dim: int = 128  # φ_x and φ_z
    objective: Literal["elbo", "iwae", "fivo"] = "elbo"
    particles: int = 4
    lr: float = 1e-3
    anneal_steps: int = option(0, at_least(0))  # β from min_anneal to 1 over these many steps (0: no annealing)
    min_anneal: float = option(0.2, between(0.0, 1.0))


@register("vrnn", "Variational RNN: a latent per LSTM step; ELBO, IWAE or FIVO", VRNNConfig, sequences=True)
def build_vrnn(cfg: VRNNConfig, data: DataInfo) -> SequenceModel:
    """The VRNN of ``cfg`` for binary sequences described by ``data``."""
    h, z, f = cfg.h_dim, cfg.z_dim, cfg.feature_dim
    phi_x = Deterministic(var=["fx"], cond_var=["x"], name=r"\phi_x",
                          net=AsLoc(flat_input(data, MLP([data.x_dim, f], "relu", out_activation="relu"))))
    phi_z = Deterministic(var=["fz"], cond_var=["z"], name=r"\phi_z",
                          net=AsLoc(MLP([z, f], "relu", out_activation="relu")))
    prior = Normal(var=["z"], cond_var=["h"], name="p",
                   net=NormalHead(MLP([h, h], "relu", out_activation="relu"), h, z))
    q = Normal(var=["z"], cond_var=["fx", "h"], name="q",
               net=NormalHead(MLP([f + h, h], "relu", out_activation="relu"), h, z))
    decoder = Bernoulli(var=["x"], cond_var=["fz", "h"], name="p", event_ndim=len(data.x_shape),
                        net=LogitsHead(shaped_output(data, MLP([f + h, h, data.x_dim], "relu"))))
    rnn = MultiDeterministic(var=["h_new", "c_new"], cond_var=["fx", "fz", "h", "c"], net=LSTMStep([f, f], h),
                             name="f_{rnn}")
    state = {"h_new": "h", "c_new": "c"}
    zeros = {"h": torch.zeros(h), "c": torch.zeros(h)}
    scan = scan_options(series=["x"], update=state, initial=zeros)

    def elbo(beta: Loss | float) -> Loss:
        step = E(phi_x, E(q, E(phi_z, E(rnn, LogProb(decoder)))) - weighted(beta, KL(q, prior)))
        return IterativeLoss(step, **scan)

    def bound(k: int, resample: Literal["systematic", "never"]) -> Loss:
        log_weight = E(phi_x, E(q, E(phi_z, E(rnn, LogProb(decoder) + LogProb(prior) - LogProb(q)))))
        return SMCBound(log_weight, k, resample=resample, **scan)

    beta: Loss | float = Parameter("beta") if cfg.anneal_steps > 0 else 1.0
    loss = sequence_objective(cfg.objective, elbo(beta), bound, cfg.particles)
    return SequenceModel(
        loss, [phi_x, phi_z, prior, q, decoder, rnn], elbo=elbo(1.0),
        bounds={"smc": lambda k: bound(k, "systematic"), "iwae": lambda k: bound(k, "never")},
        sampler=lambda n, length: generate_sequences(
            [prior, phi_z, decoder, phi_x, rnn], n, length, state, zeros, keep=["x"])["x"],
        optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr},
        clip_grad_norm=CLIP_GRAD_NORM,
        schedule=anneal(cfg.anneal_steps, cfg.min_anneal) if cfg.anneal_steps > 0 else None,
    )
