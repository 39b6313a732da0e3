"""Deep Markov model (Krishnan, Shalit & Sontag 2017), sizes of Pyro's DMM tutorial.

``z_t ~ p(z_t|z_{t-1})`` (gated transition), ``x_t ~ p(x_t|z_t)`` (Bernoulli emitter); the posterior
``q(z_t|z_{t-1}, h_t)`` combines the previous latent with a backward RNN ``h_t`` over ``x_{t:T}``:

    ELBO = E_{h=RNN(x)} [ Σ_t E_{q(z_t|z_{t-1},h_t)} [log p(x_t|z_t)] - β D_KL[q(z_t|z_{t-1},h_t) || p(z_t|z_{t-1})] ]

with β annealed from ``min_anneal`` to 1 over ``anneal_steps`` steps; or trained by the IWAE or FIVO
bound with ``particles`` particles (``objective``). ``posterior="iaf"`` puts ``iaf_layers`` inverse
autoregressive flows (conditioned on ``z_{t-1}`` and ``h_t``) on the combiner's Normal, as Krishnan et al.'s
DMM-IAF; its KL is then estimated with the posterior's own draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepgm.distributions import Bernoulli, Deterministic, Normal
from deepgm.flows import IAF, Flow, ReversePermutation, Transform
from deepgm.losses import KL, E, IterativeLoss, LogProb, Loss, Parameter, SMCBound
from deepgm.models import SequenceModel, generate_sequences
from deepgm.nn import MLP, BackwardRNN, Combiner, GatedTransition, LogitsHead
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
class DMMConfig:
    """Options of the DMM (each a ``deepgm train dmm`` flag)."""

    z_dim: int = 100
    emission_dim: int = 100
    transition_dim: int = 200
    rnn_dim: int = 600
    objective: Literal["elbo", "iwae", "fivo"] = "elbo"
    particles: int = 4  # for objective iwae / fivo
    posterior: Literal["normal", "iaf"] = "normal"
    iaf_layers: int = 2
    lr: float = 1e-3
    anneal_steps: int = option(1000, at_least(0))  # β goes linearly from min_anneal to 1 over these many steps (elbo)
    min_anneal: float = option(0.2, between(0.0, 1.0))


def _posterior(cfg: DMMConfig) -> Normal | Flow:
    """``q(z_t|z_{t-1}, h_t)``: the combiner's Normal, or IAF layers on it."""
    combiner = Combiner(cfg.z_dim, cfg.rnn_dim)
    if cfg.posterior == "normal":
        return Normal(var=["z"], cond_var=["zq_prev", "h"], net=combiner, name="q")
    z, hidden, context = cfg.z_dim, (cfg.transition_dim,), cfg.emission_dim
    base = Normal(var=["z_0"], cond_var=["zq_prev", "h"], net=combiner, name="q_0", features_shape=[z])
    sampling: list[Transform] = []  # in the order they are applied to z_0
    for i in range(cfg.iaf_layers):
        sampling += ([ReversePermutation(z)] if i else []) + [IAF(z, hidden, context)]
    return Flow(var=["z"], cond_var=["zq_prev", "h"], name="q", base=base, transforms=sampling[::-1],
                event_shape=[z], context_net=MLP([z + cfg.rnn_dim, context], "relu", out_activation="relu"))


@register("dmm", "Deep Markov model: gated transition, combiner posterior over a backward RNN", DMMConfig,
          sequences=True)
def build_dmm(cfg: DMMConfig, data: DataInfo) -> SequenceModel:
    """The DMM of ``cfg`` for piano rolls (or any binary sequences) described by ``data``."""
    rnn = Deterministic(var=["h"], cond_var=["x", "mask"], net=BackwardRNN(data.x_dim, cfg.rnn_dim), name="f_{rnn}")
    q = _posterior(cfg)
    transition = Normal(var=["z"], cond_var=["z_prev"], net=GatedTransition(cfg.z_dim, cfg.transition_dim),
                        name="p_{trans}")
    emitter = Bernoulli(var=["x"], cond_var=["z"], name="p_{emit}", event_ndim=len(data.x_shape), net=LogitsHead(
        shaped_output(data, MLP([cfg.z_dim, cfg.emission_dim, cfg.emission_dim, data.x_dim], "relu"))))
    z0 = {"z_prev": nn.Parameter(torch.zeros(cfg.z_dim)), "zq_prev": nn.Parameter(torch.zeros(cfg.z_dim))}
    scan = scan_options(series=["x", "h"], update={"z": ("z_prev", "zq_prev")}, initial=z0)

    def elbo(beta: Loss | float) -> Loss:
        step = E(q, LogProb(emitter)) - weighted(beta, KL(q, transition))
        return E(rnn, IterativeLoss(step, **scan))

    def bound(k: int, resample: Literal["systematic", "never"]) -> Loss:
        log_weight = E(q, LogProb(emitter) + LogProb(transition) - LogProb(q))
        return E(rnn, SMCBound(log_weight, k, resample=resample, **scan))

    loss = sequence_objective(cfg.objective, elbo(Parameter("beta")), bound, cfg.particles)
    return SequenceModel(
        loss, [rnn, q, transition, emitter], elbo=elbo(1.0),
        bounds={"smc": lambda k: bound(k, "systematic"), "iwae": lambda k: bound(k, "never")},
        sampler=lambda n, length: generate_sequences(
            [transition, emitter], n, length, {"z": "z_prev"}, {"z_prev": z0["z_prev"].detach()}, keep=["x"])["x"],
        optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr, "betas": (0.96, 0.999)},
        clip_grad_norm=CLIP_GRAD_NORM, schedule=anneal(cfg.anneal_steps, cfg.min_anneal),
    )
