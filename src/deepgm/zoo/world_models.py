"""World Models (Ha & Schmidhuber 2018): V, a convolutional VAE of frames, and M, an MDN-RNN over V's latents.

V: ``max(mean D_KL[q(z|x)||N(0, I)], τ_KL·dim z) - mean E_{q(z|x)}[log N(x; f(z), σ²)]`` — the paper's
L2 reconstruction (σ² = ½ makes the log-likelihood the negative sum of squared errors) with its KL
tolerance ("free bits", ``kl_tolerance`` = 0.5 nats per dimension).

M: ``h_t = LSTM([z_t, a_t], h_{t-1})``, ``p(z_{t+1}|h_t)`` a mixture of K Normals per latent dimension and
``p(d_{t+1}|h_t)`` a Bernoulli of the episode ending, trained on live steps by

    Σ_t m_t [ -(1 - d_{t+1}) log p(z_{t+1}|h_t) / dim z - w_t log p(d_{t+1}|h_t) ] / Σ_t m_t,
    w_t = 1 + (w - 1) d_{t+1}

(after the last frame of a death there is no next frame to score; deaths are rare: ``done_weight`` w weighs
them up, as the paper's Doom model does). M is a
:class:`~deepgm.models.world.LatentDynamics`: it steps on ``(z_t, a_t)`` and dreams at a temperature τ.

>>> import torch
>>> v = build_vision(VisionConfig(z_dim=4), side=16)
>>> print(v.loss)
max(mean(D_KL[q(z|x)||p_{prior}(z)]), 2) - mean(E_{q(z|x)}[log p(x|z)])
>>> m = build_memory(MemoryConfig(hidden=8, components=3), z_dim=4, action_dim=1)
>>> print(m.loss)
E_{f_{rnn}(h|z,a)}[sum((-(1 - done) * log p(z_next|h) / 4 - (1 + 9 * done) * log p(done|h)) * mask) / sum(mask)]
>>> state = m.observe(m.initial_state(2), torch.zeros(2, 4), torch.zeros(2, 1))
>>> z_next, p_done = m.imagine(state, temperature=1.15)
>>> z_next.shape, p_done.shape
(torch.Size([2, 4]), torch.Size([2]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from deepgm.distributions import Bernoulli, Deterministic, Env, Normal, NormalMixture
from deepgm.losses import KL, E, LogProb, Parameter, maximum
from deepgm.models import VAE, Model
from deepgm.models.world import State
from deepgm.nn.frames import DoneHead, FrameDecoder, FrameEncoder, MixtureHead, SequenceLSTM
from deepgm.zoo.options import at_least, between, non_negative, option, positive

__all__ = ["VisionConfig", "MemoryConfig", "build_vision", "build_memory", "MDNRNN"]


@dataclass
class VisionConfig:
    """Options of V (each a ``deepgm world train-v`` flag)."""

    z_dim: int = option(64, at_least(1))
    kl_tolerance: float = option(0.5, non_negative())  # nats per latent dimension the KL is not pushed below
    pixel_scale: float = option(0.5**0.5, positive())  # σ of the pixels' Normal likelihood
    lr: float = option(1e-3, positive())


@dataclass
class MemoryConfig:
    """Options of M (each a ``deepgm world train-m`` flag)."""

    hidden: int = option(256, at_least(1))
    components: int = option(5, at_least(1))
    done_weight: float = option(10.0, between(1.0, math.inf))
    lr: float = option(1e-3, positive())
    grad_clip: float = option(1.0, positive())
    seq_len: int = option(100, at_least(2))  # training windows of this many transitions


def build_vision(cfg: VisionConfig, side: int) -> VAE:
    """V for square RGB frames ``(3, side, side)``."""
    q = Normal(var=["z"], cond_var=["x"], net=FrameEncoder(side, cfg.z_dim), name="q")
    p = Normal(var=["x"], cond_var=["z"], net=FrameDecoder(cfg.z_dim, side), scale=cfg.pixel_scale, event_ndim=3,
               name="p")
    prior = Normal(var=["z"], loc=0.0, scale=1.0, features_shape=[cfg.z_dim], name="p_{prior}")
    free_nats = cfg.kl_tolerance * cfg.z_dim
    loss = maximum(KL(q, prior).mean(), free_nats) - E(q, LogProb(p)).mean()
    return VAE(q, p, prior, loss=loss, optimizer=torch.optim.Adam, optimizer_params={"lr": cfg.lr})


class MDNRNN(Model):
    """M: the objective of the module docstring, and the steps of :class:`~deepgm.models.world.LatentDynamics`."""

    def __init__(self, cfg: MemoryConfig, z_dim: int, action_dim: int) -> None:
        self.z_dim, self.action_dim, self.feature_dim = z_dim, action_dim, cfg.hidden
        lstm = SequenceLSTM((z_dim, action_dim), cfg.hidden)
        rnn = Deterministic(var=["h"], cond_var=["z", "a"], net=lstm, name="f_{rnn}")
        p_next = NormalMixture(var=["z_next"], cond_var=["h"], net=MixtureHead(cfg.hidden, z_dim, cfg.components),
                               event_ndim=1, name="p")
        p_done = Bernoulli(var=["done"], cond_var=["h"], net=DoneHead(cfg.hidden), event_ndim=0, name="p")
        mask, done = Parameter("mask"), Parameter("done")
        per_step = -(1 - done) * LogProb(p_next) / z_dim - (1 + (cfg.done_weight - 1) * done) * LogProb(p_done)
        loss = E(rnn, (per_step * mask).sum() / mask.sum())
        super().__init__(loss, [rnn, p_next, p_done], optimizer=torch.optim.Adam,
                         optimizer_params={"lr": cfg.lr}, clip_grad_norm=cfg.grad_clip)
        self.lstm, self.p_next, self.p_done = lstm, p_next, p_done
        self.done_weight = cfg.done_weight

    # -- LatentDynamics ---------------------------------------------------------------------------------
    def initial_state(self, n: int) -> State:
        w = self.lstm.rnn.all_weights[0][1]
        zeros = w.new_zeros(n, self.feature_dim)
        return zeros, zeros

    def observe(self, state: State, z: torch.Tensor, a: torch.Tensor) -> State:
        return self.lstm.step(torch.cat([z, a], -1), state[0], state[1])

    def features(self, state: State) -> torch.Tensor:
        return state[0]

    def imagine(self, state: State, temperature: float = 1.0, mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The next latent and the probability of the end, the latter corrected for ``done_weight``: a head
        trained with deaths weighted w times predicts ``q = w p / (1 - p + w p)``, so ``p = q / (w - (w-1) q)``."""
        h = state[0]
        params = self.p_next.params_at(Env({"h": h}))
        if mean:
            z = self.p_next.mixture_mean(params)
        else:
            z = self.p_next._draw_from(NormalMixture.tempered(params, temperature), (), False)
        q = torch.sigmoid(self.p_done.params_at(Env({"h": h}))["logits"])
        w = self.done_weight
        return z, q / (w - (w - 1) * q)

    # -- evaluation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def next_latent_scores(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """On a batch of :func:`~deepgm.models.world.draw_latents`: the log-likelihood of the next latent
        (nats per dimension, over live steps with a next frame: exact for M) and the cross-entropy of its
        end (nats per step)."""
        with self.evaluating():
            h = self.lstm(batch["z"], batch["a"])["loc"]
            lp_z = self.p_next.log_prob({"h": h, "z_next": batch["z_next"]})
            lp_d = self.p_done.log_prob({"h": h, "done": batch["done"]})
        m = batch["mask"]
        live = m * (1 - batch["done"])  # steps with a next frame
        return {"next_latent_loglik_per_dim": float((lp_z * live).sum() / live.sum()) / self.z_dim,
                "done_cross_entropy": float(-(lp_d * m).sum() / m.sum())}


def build_memory(cfg: MemoryConfig, z_dim: int, action_dim: int) -> MDNRNN:
    """M for ``z_dim`` latents and ``action_dim`` actions."""
    return MDNRNN(cfg, z_dim, action_dim)
